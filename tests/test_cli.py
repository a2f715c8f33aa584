"""The `commissions` command as a new user runs it: serve on the embedded PostgreSQL, admin
commands beside the running service, and a clean stop that leaves no process behind."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from service.cli import admin_command, database_in_use
from service.config import Settings

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


@pytest.mark.slow
@pytest.mark.own_server
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
    using, refusal = duplicate.stderr.splitlines()
    # Every admin command says which database it used: without COMMISSIONS_DATA_DIR it
    # would quietly be a new, empty one in the default place.
    where = f"the embedded PostgreSQL in {tmp_path / 'data'} (COMMISSIONS_DATA_DIR)"
    assert using == f"commissions: using {where}"
    assert json.loads(refusal)["error"] == "program_exists"

    # A program that is not in this database: the refusal names the database.
    for args in (
        ["key", "create", "--program", "acne", "--scope", "read"],
        ["webhook-secret", "list", "--program", "acne"],
    ):
        missing = subprocess.run(
            [*COMMAND, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert missing.returncode == 2, args
        assert missing.stdout == ""
        assert missing.stderr.splitlines() == [
            f"commissions: using {where}",
            json.dumps(
                {
                    "error": "program_not_found",
                    "detail": f"program 'acne' does not exist in {where}",
                }
            ),
        ]


def test_a_database_url_is_named_without_its_password() -> None:
    settings = Settings(DATABASE_URL="postgresql://app:s3cret@db.internal:5433/commissions")
    assert database_in_use(settings) == (
        "the database postgresql://app:***@db.internal:5433/commissions (DATABASE_URL)"
    )


def test_the_banner_command_falls_back_to_the_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An interpreter with no `commissions` script beside it (say, a system Python with the
    # package on PYTHONPATH): the command runs the package as a module.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "my python" / "python3"))
    monkeypatch.delenv("COMMISSIONS_DATA_DIR", raising=False)
    assert admin_command() == f"'{tmp_path}/my python/python3' -m service"
    monkeypatch.setenv("COMMISSIONS_DATA_DIR", "/srv/data dir")
    assert admin_command() == (
        f"COMMISSIONS_DATA_DIR='/srv/data dir' '{tmp_path}/my python/python3' -m service"
    )


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COMMAND, "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        text=True,
    )


@pytest.mark.slow
@pytest.mark.own_server
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


@pytest.mark.slow
@pytest.mark.own_server
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
        assert server.stderr is not None
        banner_lines: list[str] = []
        while not banner_lines or not banner_lines[-1].startswith("  API docs:"):
            line = server.stderr.readline()
            assert line, "".join(banner_lines)
            banner_lines.append(line)
        _wait_ready(base, server)
        # The banner's command works as printed, from a shell where neither the virtualenv
        # is on PATH nor COMMISSIONS_DATA_DIR is set.
        (printed,) = [line.strip() for line in banner_lines if " program create acme" in line]
        assert printed.endswith(" program create acme --currency USD")
        shell_env = {k: v for k, v in env.items() if k != "COMMISSIONS_DATA_DIR"}
        shell_env["PATH"] = "/usr/bin:/bin"
        done = subprocess.run(
            ["/bin/sh", "-c", printed],
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (printed, done.stderr)
        assert shlex.split(printed)[0] == f"COMMISSIONS_DATA_DIR={data_dir}"
        created = json.loads(done.stdout)
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
    server.stderr.close()
    banner = "".join(banner_lines)
    assert str(data_dir) in banner
    deadline = time.monotonic() + 10
    while _postgres_processes(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _postgres_processes(data_dir) == []


@pytest.mark.slow
@pytest.mark.own_server
def test_integration_commands_never_print_the_secret(tmp_path: Path) -> None:
    env = _environment(tmp_path / "data")
    _admin(env, "program", "create", "acme", "--currency", "USD")
    secret = "whsec_5f8a9e1b7c3d2f4e6a8b0c1d3e5f7a9b"
    done = subprocess.run(
        [*COMMAND, "integration", "create", "--program", "acme", "--platform", "stripe",
         "--secret", "-", "--attribution-field", "affiliate"],
        env=env, input=secret + "\n", capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    integration = created["id"]
    assert created == {
        "id": integration,
        "endpoint": f"/v1/integrations/{integration}/webhook",
        "platform": "stripe",
        "attribution_field": "affiliate",
    }
    assert secret not in done.stdout + done.stderr
    listed: Any = _admin(env, "integration", "list", "--program", "acme")
    assert secret not in json.dumps(listed)
    (entry,) = listed["integrations"]
    assert (entry["id"], entry["platform"], entry["revoked_at"]) == (integration, "stripe", None)
    assert _admin(env, "integration", "revoke", "--program", "acme", integration) == {
        "revoked": integration
    }
    listed = _admin(env, "integration", "list", "--program", "acme")
    (entry,) = listed["integrations"]
    assert entry["revoked_at"] is not None
    bad = subprocess.run(
        [*COMMAND, "integration", "create", "--program", "acme", "--platform", "magento",
         "--secret", "x"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert json.loads(bad.stderr.splitlines()[-1])["error"] == "invalid_integration"
