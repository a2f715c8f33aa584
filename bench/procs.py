"""Processes under measurement: resident memory polled every 0.1 s (with children), the read
position of a file they read, and CPU time per process group between two instants."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

INTERVAL = 0.1


@dataclass
class Watched:
    """One process (and its children) sampled by the `Sampler`."""

    name: str
    pid: int
    read_file: Path | None = None
    samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, rss bytes)
    positions: list[tuple[float, int]] = field(default_factory=list)  # (monotonic, offset)

    def sample(self, now: float) -> bool:
        """Take one sample; False once the process is gone."""
        try:
            process = psutil.Process(self.pid)
            rss = process.memory_info().rss
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    rss += child.memory_info().rss
            if self.read_file is not None:
                for opened in process.open_files():
                    if Path(opened.path) == self.read_file:
                        self.positions.append((now, opened.position))
        except psutil.Error:
            return False
        self.samples.append((now, rss))
        return True

    def peak(self, since: float = 0.0, until: float = float("inf")) -> int | None:
        values = [rss for at, rss in self.samples if since <= at <= until]
        return max(values) if values else None


class Sampler:
    """A thread that samples every watched process every `INTERVAL` seconds."""

    def __init__(self) -> None:
        self._watched: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, name: str, pid: int, *, read_file: Path | None = None) -> Watched:
        watched = Watched(name, pid, read_file.resolve() if read_file else None)
        watched.sample(time.monotonic())
        with self._lock:
            self._watched[name] = watched
        return watched

    def _loop(self) -> None:
        while not self._stop.wait(INTERVAL):
            now = time.monotonic()
            with self._lock:
                watched = list(self._watched.values())
            for item in watched:
                if not item.sample(now):
                    with self._lock:
                        self._watched.pop(item.name, None)


def postgres_pid(backend_pid: int) -> int | None:
    """The postmaster of a backend, when it runs on this machine (else None)."""
    try:
        parent = psutil.Process(backend_pid).parent()
    except psutil.Error:
        return None
    if parent is None or "postgres" not in parent.name():
        return None
    return parent.pid


def _cpu_of(pid: int | None, *, with_children: bool) -> float | None:
    """CPU seconds of a process; with its children, live ones and those it reaped."""
    if pid is None:
        return None
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system
        if with_children:
            total += times.children_user + times.children_system
            for child in process.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child_times = child.cpu_times()
                    total += child_times.user + child_times.system
    except psutil.Error:
        return None
    return total


@dataclass(frozen=True)
class CpuSnapshot:
    at: float
    service: float | None
    postgres: float | None
    bench: float
    children: float  # reaped children of this process (the import, CLI commands)
    machine_busy: float


def cpu_snapshot(service_pid: int | None, postgres: int | None) -> CpuSnapshot:
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    own = psutil.Process().cpu_times()
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(
        at=time.monotonic(),
        service=_cpu_of(service_pid, with_children=True),  # its worker processes
        postgres=_cpu_of(postgres, with_children=True),
        bench=own.user + own.system,
        children=reaped.ru_utime + reaped.ru_stime,
        machine_busy=sum(machine) - idle,
    )


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds each party used between two snapshots, and the wall time between them."""

    wall: float
    service: float | None
    postgres: float | None
    bench: float
    children: float
    machine_busy: float
    cores: int

    @staticmethod
    def between(before: CpuSnapshot, after: CpuSnapshot) -> CpuUse:
        def delta(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else max(0.0, b - a)

        return CpuUse(
            wall=after.at - before.at,
            service=delta(before.service, after.service),
            postgres=delta(before.postgres, after.postgres),
            bench=after.bench - before.bench,
            children=after.children - before.children,
            machine_busy=after.machine_busy - before.machine_busy,
            cores=os.cpu_count() or 1,
        )

    def combine(self, other: CpuUse) -> CpuUse:
        def add(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else a + b

        return CpuUse(
            wall=self.wall + other.wall,
            service=add(self.service, other.service),
            postgres=add(self.postgres, other.postgres),
            bench=self.bench + other.bench,
            children=self.children + other.children,
            machine_busy=self.machine_busy + other.machine_busy,
            cores=self.cores,
        )
