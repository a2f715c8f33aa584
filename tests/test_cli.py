"""The `commissions` command as a new user runs it: serve on the embedded PostgreSQL, admin
commands beside the running service, and a clean stop that leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

COMMAND = [sys.executable, "-m", "service"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    env["COMMISSIONS_DATA_DIR"] = str(data_dir)
    return env


def _admin(env: dict[str, str], *args: str) -> dict[str, object]:
    done = subprocess.run(
        [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def _wait_ready(base: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read() if server.stderr else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the service did not become ready")


def test_admin_commands_work_without_a_running_service(tmp_path: Path) -> None:
    env = _environment(tmp_path / "data")
    created = _admin(
        env, "program", "create", "acme", "--currency", "jpy", "--timezone", "Asia/Tokyo"
    )
    assert created["program"] == {
        "id": "acme",
        "name": "acme",
        "currency": "JPY",
        "timezone": "Asia/Tokyo",
        "created_at": created["program"]["created_at"],  # type: ignore[index]
    }
    assert str(created["api_key"]).startswith("cmk_acme_")
    # The command started the embedded server for itself and stopped it on exit.
    assert _postgres_processes(tmp_path / "data") == []

    duplicate = subprocess.run(
        [*COMMAND, "program", "create", "acme", "--currency", "USD"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert duplicate.returncode == 2
    assert json.loads(duplicate.stderr)["error"] == "program_exists"


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        text=True,
    )


def test_a_service_killed_hard_leaves_a_server_the_next_one_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = _environment(data_dir)
    port = _free_port()
    first = _serve(env, port)
    _wait_ready(f"http://127.0.0.1:{port}", first)
    first.kill()  # SIGKILL: no clean-up runs, the database server is orphaned
    first.wait(timeout=30)
    assert _postgres_processes(data_dir) != []

    second = _serve(env, port)
    _wait_ready(f"http://127.0.0.1:{port}", second)
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=60)
    deadline = time.monotonic() + 10
    while _postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(data_dir) == []


@pytest.mark.parametrize(
    ("stop_signal", "workers"), [(signal.SIGTERM, 1), (signal.SIGINT, 1), (signal.SIGTERM, 2)]
)
def test_serve_on_embedded_postgres_then_stop(
    tmp_path: Path, stop_signal: signal.Signals, workers: int
) -> None:
    data_dir = tmp_path / "data"
    env = _environment(data_dir)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        _wait_ready(base, server)
        created = _admin(env, "program", "create", "acme", "--currency", "USD")
        admin_key = str(created["api_key"])
        reader = _admin(env, "key", "create", "--program", "acme", "--scope", "read")
        read_key = str(reader["api_key"])
        assert reader["scopes"] == ["read"]

        # The admin commands came and went; the service and its database are still there.
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        response = httpx.post(
            f"{base}/v1/members",
            json={"id": "M1", "sponsor_id": None},
            headers={"Authorization": f"Bearer {admin_key}"},
            timeout=5,
        )
        assert response.status_code == 201
        response = httpx.get(
            f"{base}/v1/members/M1", headers={"Authorization": f"Bearer {read_key}"}, timeout=5
        )
        assert response.json()["id"] == "M1"
        listed = _admin(env, "key", "list", "--program", "acme")
        assert len(listed["keys"]) == 2  # type: ignore[arg-type]
        assert _postgres_processes(data_dir) != []
    finally:
        server.send_signal(stop_signal)
        try:
            server.wait(timeout=60)
        finally:
            if server.poll() is None:
                server.kill()
    assert server.stderr is not None
    with server.stderr:
        banner = server.stderr.read()
    assert str(data_dir) in banner
    assert "commissions program create" in banner
    deadline = time.monotonic() + 10
    while _postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(data_dir) == []
