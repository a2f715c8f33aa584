"""One benchmark run, from an empty program to the results."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import platform
import random
import resource
import secrets
import shlex
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import commands, generate, load, periods
from bench.baseline import BareSql
from bench.cli import Options
from bench.database import Monitor, open_server, server_facts
from bench.procs import CpuSnapshot, CpuUse, Sampler, cpu_snapshot
from bench.report import ImportRun, Machine, Results, render
from bench.stats import Load, Reads

PLAN: dict[str, Any] = {
    "effective_from": "2026-01-01T00:00:00Z",
    "categories": {
        "product": {
            "personal_rate": "0.10",
            "level_rates": [
                "0.10",
                "0.08",
                "0.07",
                "0.06",
                "0.05",
                "0.04",
                "0.03",
                "0.03",
                "0.02",
                "0.02",
            ],
        },
        "enrollment_fee": {"personal_rate": "0", "level_rates": ["0.20", "0.05", "0.05"]},
    },
    "compression": "none",
    "max_payout_ratio": "0.60",
    # Five ranks using every requirement and every bonus. Unranked members earn at every
    # level (the plan's ten), so the sales, all recorded before the first close, pay the
    # same lines as without ranks; the closes decide the ranks and pay the bonuses.
    "ranks": [
        {"name": "Bronze", "min_personal_volume": "50.00", "unlocked_levels": 4,
         "differential_rate": "0.01"},
        {"name": "Silver", "min_personal_volume": "100.00", "min_organization_volume": "1000.00",
         "min_active_recruits": 2, "unlocked_levels": 6, "differential_rate": "0.02",
         "matching_rates": ["0.05"]},
        {"name": "Gold", "min_personal_volume": "100.00", "min_organization_volume": "5000.00",
         "max_leg_share": "0.50", "min_legs": {"count": 2, "rank": "Silver"},
         "unlocked_levels": 8, "differential_rate": "0.03", "matching_rates": ["0.05", "0.03"],
         "advancement_bonus": "100.00"},
        {"name": "Platinum", "min_personal_volume": "100.00",
         "min_organization_volume": "25000.00", "max_leg_share": "0.40",
         "min_legs": {"count": 3, "volume": "5000.00"}, "min_active_recruits": 3,
         "unlocked_levels": 10, "differential_rate": "0.04",
         "matching_rates": ["0.05", "0.03", "0.02"], "pool_shares": 1,
         "advancement_bonus": "500.00"},
        {"name": "Diamond", "min_personal_volume": "100.00",
         "min_organization_volume": "100000.00", "max_leg_share": "0.40",
         "min_legs": {"count": 3, "rank": "Gold"}, "min_active_recruits": 5,
         "unlocked_levels": 10, "differential_rate": "0.05",
         "matching_rates": ["0.05", "0.03", "0.02"], "pool_shares": 3,
         "advancement_bonus": "2000.00"},
    ],
    "unranked_levels": 10,
    "leadership_pool": {"rate": "0.01"},
}  # fmt: skip
PLAN_DEPTH = 10
WARMUP_SALES = 200
READ_WARMUP = 2
SELLER_POOL = 2000
STATS_FLUSH = 1.1


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(options: Options, argv: list[str]) -> int:
    stamp = datetime.now(UTC)
    run_id = f"bench-{stamp:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    run_dir = options.workdir / run_id
    run_dir.mkdir(parents=True)
    say(f"run directory {run_dir}")
    try:
        with (
            Sampler() as sampler,
            open_server(os.environ.get("DATABASE_URL"), run_dir / "embedded") as server,
        ):
            env = commands.environment(server.url)
            results = _run_async(
                _measure(options, argv, stamp, run_id, run_dir, env, server.kind, sampler)
            )
    finally:
        if options.keep:
            say(f"kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    text = render(results)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(text)
    sys.stdout.write(text)
    say(f"wrote {options.output}")
    return 0


def _run_async(coroutine: Coroutine[Any, Any, Results]) -> Results:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def _machine(postgres: str, server_kind: str) -> Machine:
    model = "unknown"
    memory = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
                break
    except OSError:  # pragma: no cover - not Linux
        model = platform.processor() or "unknown"
    return Machine(
        cores=os.cpu_count() or 1,
        memory_gb=memory,
        cpu_model=model,
        python=platform.python_version(),
        postgres=postgres,
        server=server_kind,
        system=f"{platform.system()} {platform.release()}",
    )


async def _measure(
    options: Options,
    argv: list[str],
    stamp: datetime,
    run_id: str,
    run_dir: Path,
    env: dict[str, str],
    server_kind: str,
    sampler: Sampler,
) -> Results:
    version, postmaster = await server_facts(env["DATABASE_URL"])
    say(f"PostgreSQL {version} ({server_kind}); postmaster pid {postmaster}")

    # The program's events, streamed to disk.
    started = time.perf_counter()
    rng = random.Random(options.seed)
    tree = generate.build_tree(options.members, options.chain, rng)
    stats = generate.tree_stats(tree)
    subjects = generate.read_subjects(tree, options.team)
    sellers = generate.sellers_with_full_upline(tree, PLAN_DEPTH, SELLER_POOL, rng)
    events_path = run_dir / "events.ndjson"
    counts = generate.write_events(
        tree, events_path, sales_per_member=options.sales_per_member, rng=rng
    )
    del tree
    generate_seconds = time.perf_counter() - started
    generator_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    say(
        f"generated {counts.events:,} events ({counts.bytes_written / 1e6:,.0f} MB) "
        f"in {generate_seconds:.1f} s"
    )

    program_id = run_id
    created = commands.run_cli(env, "program", "create", program_id, "--currency", "USD")
    key: str = created["api_key"]

    port = commands.free_port()
    base_url = f"http://127.0.0.1:{port}"
    with (run_dir / "serve.log").open("w") as serve_log:
        serve = commands.start_serve(env, port, serve_log, workers=options.workers)
        try:
            commands.wait_ready(serve, base_url)
            service = sampler.watch("service", serve.pid)

            def cpu() -> CpuSnapshot:
                return cpu_snapshot(serve.pid, postmaster)

            await _put_plan(base_url, key)
            results = await _with_service(
                options,
                base_url,
                key,
                program_id,
                events_path,
                env,
                run_dir,
                sampler,
                cpu,
                sellers,
                subjects,
                counts,
            )
            imported, single, bare, batches, reads, deep, load_since = results
            service_idle = service.samples[0][1] if service.samples else None
            service_peak = service.peak(since=load_since)
            service_during_import = service.peak(until=load_since)
            say("closing the months that have ended, then their statements CSV")
            closed = await periods.measure(
                base_url=base_url,
                key=key,
                database_url=env["DATABASE_URL"],
                program_id=program_id,
                currency=created["program"]["currency"],
                timezone=created["program"]["timezone"],
                by_month=counts.by_month,
                cpu=cpu,
                service=service,
                say=say,
            )
        finally:
            commands.stop(serve)

    return Results(
        command=shlex.join(["python", "-m", "bench", *argv]),
        date=f"{stamp:%Y-%m-%d %H:%M} UTC",
        machine=_machine(version, server_kind),
        options=options,
        program_id=program_id,
        plan=PLAN,
        tree=stats,
        events=counts,
        generate_seconds=generate_seconds,
        generator_rss=generator_rss,
        subjects=subjects,
        deep_offsets=deep,
        imported=imported,
        single=single,
        bare=bare,
        batches=batches,
        reads=reads,
        service_idle_rss=service_idle,
        service_peak_rss=service_peak,
        service_import_rss=service_during_import,
        sellers=len(sellers),
        periods=closed,
    )


async def _put_plan(base_url: str, key: str) -> int:
    async with httpx.AsyncClient(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        response = await client.put("/v1/plan", json=PLAN)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"PUT /v1/plan: {response.status_code} {response.text}")
        version: int = response.json()["version"]
        return version


async def _with_service(
    options: Options,
    base_url: str,
    key: str,
    program_id: str,
    events_path: Path,
    env: dict[str, str],
    run_dir: Path,
    sampler: Sampler,
    cpu: Callable[[], CpuSnapshot],
    sellers: list[str],
    subjects: list[generate.Subject],
    counts: generate.EventCounts,
) -> tuple[
    ImportRun,
    dict[int, list[Load]],
    dict[int, list[Load]],
    list[Load],
    dict[tuple[str, str], list[Reads]],
    dict[str, int],
    float,
]:
    imported = _import(options, events_path, env, run_dir, sampler, cpu, program_id, counts)
    if imported.report.get("applied") != counts.events:
        say(f"the import did not apply every event: {imported.report}")
    load_since = time.monotonic()

    bare = BareSql(env["DATABASE_URL"], program_id)
    single: dict[int, list[Load]] = {c: [] for c in options.clients}
    bare_runs: dict[int, list[Load]] = {c: [] for c in options.clients}
    batches: list[Load] = []
    reads: dict[tuple[str, str], list[Reads]] = {}
    deep: dict[str, int] = {}
    cursors: dict[str, str | None] = {}

    async def http(count: int, clients: int, tag: str) -> Load:
        return await load.single_sales(
            options.client, base_url, key, sellers, count=count, clients=clients, tag=tag, cpu=cpu
        )

    async def sql(count: int, clients: int, tag: str) -> Load:
        return await bare.run(sellers, count=count, clients=clients, tag=tag, cpu=cpu)

    async def events(count: int, clients: int, tag: str) -> Load:
        return await load.event_batches(
            options.client,
            base_url,
            key,
            sellers,
            batches=count,
            batch_size=options.batch_size,
            clients=clients,
            tag=tag,
            cpu=cpu,
        )

    async with (
        Monitor(env["DATABASE_URL"]) as monitor,
        load.walker(base_url, key) as walker,
        load.connected(options.client, base_url, key, 1) as (client,),
    ):

        async def counted(work: Awaitable[Load]) -> Load:
            """The run, with the database sessions opened meanwhile."""
            before = await monitor.sessions()
            done = await work
            await asyncio.sleep(STATS_FLUSH)  # backends report their statistics within 1 s
            after = await monitor.sessions()
            if before is None or after is None:
                return done
            return dataclasses.replace(done, sessions=after - before)

        try:
            say("warming up")
            for clients in options.clients:
                await http(WARMUP_SALES, clients, f"W{clients}")
                await sql(WARMUP_SALES, clients, f"V{clients}")
            await events(1, 1, "WB")
            for subject in subjects:
                cursors[subject.label], deep[subject.label] = await load.deep_cursor(
                    walker, subject
                )
            for run in range(1, options.repeat + 1):
                for clients in options.clients:
                    say(f"run {run}/{options.repeat}: {options.requests} sales, {clients} clients")
                    single[clients].append(
                        await counted(http(options.requests, clients, f"H{run}-{clients}"))
                    )
                    bare_runs[clients].append(
                        await counted(sql(options.requests, clients, f"B{run}-{clients}"))
                    )
                say(f"run {run}/{options.repeat}: {options.batches} batches")
                batches.append(
                    await counted(events(options.batches, options.batch_clients, f"E{run}"))
                )
                say(f"run {run}/{options.repeat}: reads")
                for subject in subjects:
                    for endpoint in load.ENDPOINTS:
                        path = load.read_path(endpoint, subject.member_id, cursors[subject.label])
                        if path is None:
                            continue
                        reads.setdefault((subject.label, endpoint), []).append(
                            await load.timed_reads(
                                client,
                                path,
                                calls=options.read_calls,
                                warmup=READ_WARMUP,
                                cpu=cpu,
                            )
                        )
        finally:
            await bare.close()
    return imported, single, bare_runs, batches, reads, deep, load_since


def _import(
    options: Options,
    events_path: Path,
    env: dict[str, str],
    run_dir: Path,
    sampler: Sampler,
    cpu: Callable[[], CpuSnapshot],
    program_id: str,
    counts: generate.EventCounts,
) -> ImportRun:
    events, sales_offset = counts.events, counts.sales_offset
    say(f"importing {events:,} events with `commissions import`")
    before = cpu()
    with (
        (run_dir / "import.out").open("w+") as out,
        (run_dir / "import.log").open("w") as err,
    ):
        started = time.monotonic()
        process = commands.start_import(
            env,
            events_path,
            program_id,
            out,
            err,
            options.import_batch_size,
            options.import_parallel,
        )
        watched = sampler.watch("import", process.pid, read_file=events_path)
        try:
            code = process.wait()
        except BaseException:  # interrupted: do not leave the import running
            commands.stop(process)
            raise
        ended = time.monotonic()
        use = CpuUse.between(before, cpu())
        out.seek(0)
        output = out.read()
    if code != 0:
        log = (run_dir / "import.log").read_text()[-3000:]
        raise RuntimeError(f"the import failed with {code}:\n{log}")
    report: dict[str, Any] = json.loads(output)
    seconds = ended - started
    say(f"imported in {seconds:.1f} s: {events / seconds:,.0f} events/s")
    middle = started + seconds / 2
    past_enrolments = [at for at, offset in watched.positions if offset > sales_offset]
    return ImportRun(
        events=events,
        enrolments=counts.enrolments,
        seconds=seconds,
        enrol_seconds=past_enrolments[0] - started if past_enrolments else None,
        report=report,
        peak_rss=watched.peak(),
        rss_first_half=watched.peak(until=middle),
        rss_second_half=watched.peak(since=middle),
        cpu=use,
        file_bytes=events_path.stat().st_size,
    )
