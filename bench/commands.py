"""The service's own command line, run as subprocesses: `program create`, `import`, `serve`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def environment(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    env.pop("TEST_DATABASE_URL", None)
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "service", *args]


def run_cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run a `commissions` command; its JSON output."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        command(*args), cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"commissions {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def start_import(
    env: dict[str, str],
    path: Path,
    program_id: str,
    out: IO[str],
    err: IO[str],
    batch: int | None,
    parallel: int | None,
) -> subprocess.Popen[str]:
    args = ["import", str(path), "--program", program_id]
    if batch is not None:
        args += ["--batch-size", str(batch)]
    if parallel is not None:
        args += ["--parallel", str(parallel)]
    return subprocess.Popen(  # noqa: S603
        command(*args), cwd=ROOT, env=env, stdout=out, stderr=err, text=True
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_serve(
    env: dict[str, str], port: int, log: IO[str], *, workers: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603
        command("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str], base_url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode} while starting")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the service did not answer {base_url}/readyz in {timeout:.0f} s")


def stop(process: subprocess.Popen[str], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if it does not stop in time (only the process we started)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
