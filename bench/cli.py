"""`python -m bench`: options."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from bench.client import CLIENTS

BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Options:
    members: int
    chain: int
    sales_per_member: float
    repeat: int
    clients: tuple[int, ...]
    requests: int
    batches: int
    batch_size: int
    batch_clients: int
    read_calls: int
    team: int
    seed: int
    client: str
    import_batch_size: int | None
    import_parallel: int | None
    workers: int
    output: Path
    workdir: Path
    keep: bool


def _clients(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError as error:
        raise argparse.ArgumentTypeError("a number, or numbers separated by commas") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("at least one client")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Generate a program into PostgreSQL through the service's bulk import, then "
            "measure ingest and reads through the HTTP API; writes the results as Markdown."
        ),
    )
    parser.add_argument("--members", type=_positive, default=1_000_000, help="all members")
    parser.add_argument(
        "--chain",
        type=int,
        default=None,
        help="length of the one long chain (part of --members); default min(10000, members/10)",
    )
    parser.add_argument("--sales-per-member", type=float, default=5.0)
    parser.add_argument("--repeat", type=_positive, default=5, help="runs of each measurement")
    parser.add_argument(
        "--clients",
        type=_clients,
        default=(8, 16),
        help="concurrent clients of the single-sale load, e.g. 8,16 (default)",
    )
    parser.add_argument(
        "--requests", type=_positive, default=2000, help="single sales per run and client count"
    )
    parser.add_argument("--batches", type=_positive, default=10, help="event batches per run")
    parser.add_argument("--batch-size", type=_positive, default=500, help="events per batch")
    parser.add_argument(
        "--batch-clients", type=_positive, default=2, help="concurrent batch senders"
    )
    parser.add_argument(
        "--read-calls", type=_positive, default=20, help="timed calls per read and member"
    )
    parser.add_argument(
        "--team",
        type=_positive,
        default=None,
        help="team size of the mid-size member read (default min(10000, members/10))",
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="raw",
        help="HTTP client of the timed loads: a minimal HTTP/1.1 one (raw) or httpx",
    )
    parser.add_argument(
        "--import-batch-size", type=_positive, default=None, help="passed to `import`"
    )
    parser.add_argument(
        "--import-parallel", type=_positive, default=None, help="passed to `import --parallel`"
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=2,
        help="`serve --workers`: service processes (default: one per core of this machine)",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=BENCH / "out",
        help="where the run's directory (events, logs, embedded database) goes",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's directory (deleted otherwise)"
    )
    args = parser.parse_args(argv)
    chain = min(10_000, args.members // 10) if args.chain is None else args.chain
    if not 0 <= chain < args.members:
        parser.error("--chain must be at least 0 and less than --members")
    return Options(
        members=args.members,
        chain=chain,
        sales_per_member=args.sales_per_member,
        repeat=args.repeat,
        clients=args.clients,
        requests=args.requests,
        batches=args.batches,
        batch_size=args.batch_size,
        batch_clients=args.batch_clients,
        read_calls=args.read_calls,
        team=args.team or max(1, min(10_000, args.members // 10)),
        seed=args.seed,
        client=args.client,
        import_batch_size=args.import_batch_size,
        import_parallel=args.import_parallel,
        workers=args.workers,
        output=args.output,
        workdir=args.workdir,
        keep=args.keep,
    )
