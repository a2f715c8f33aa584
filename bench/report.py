"""The results as Markdown: machine, program, goals (met or missed, by how much, and what
limits each miss, from the CPU each process used while it was measured), then the details."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.cli import Options
from bench.generate import EventCounts, Subject, TreeStats
from bench.load import DEEP_OFFSET_MAX, ENDPOINTS, PAGE, READ_PERIOD, read_path
from bench.periods import BASELINE_AGGREGATE, BASELINE_COPY, Close, PeriodsRun
from bench.procs import CpuUse
from bench.stats import Load, Reads, median

MB = 1024 * 1024
OTHER = "other processes"


@dataclass(frozen=True)
class Machine:
    cores: int
    memory_gb: float
    cpu_model: str
    python: str
    postgres: str
    server: str
    system: str


@dataclass(frozen=True)
class ImportRun:
    events: int
    enrolments: int
    seconds: float
    enrol_seconds: float | None  # until the importer read past the last enrolment
    report: dict[str, Any]
    peak_rss: int | None
    rss_first_half: int | None
    rss_second_half: int | None
    cpu: CpuUse
    file_bytes: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def growth(self) -> float | None:
        """How much the peak memory of the second half exceeds that of the first."""
        if not self.rss_first_half or not self.rss_second_half:
            return None
        return max(0.0, self.rss_second_half / self.rss_first_half - 1)


@dataclass(frozen=True)
class Results:
    command: str
    date: str
    machine: Machine
    options: Options
    program_id: str
    plan: dict[str, Any]
    tree: TreeStats
    events: EventCounts
    generate_seconds: float
    generator_rss: int  # peak RSS of the bench process once the events were written
    subjects: list[Subject]
    deep_offsets: dict[str, int]
    imported: ImportRun
    single: dict[int, list[Load]]
    bare: dict[int, list[Load]]
    batches: list[Load]
    reads: dict[tuple[str, str], list[Reads]]
    service_idle_rss: int | None
    service_peak_rss: int | None
    service_import_rss: int | None
    sellers: int
    periods: PeriodsRun


# --- formatting -----------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    value = seconds * 1000
    if value >= 100:
        return f"{value:,.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 1 else _ms(seconds)


def _rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:,.0f} MB"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _total(runs: Sequence[Load] | Sequence[Reads]) -> CpuUse:
    use = runs[0].cpu
    for run in runs[1:]:
        use = use.combine(run.cpu)
    return use


# --- what limits a figure -------------------------------------------------------------------


def cpu_per_unit(use: CpuUse, units: int, unit: str) -> str:
    """CPU time per unit of work of each process, and how busy the machine was."""
    parts = []
    for name, seconds in _parties(use):
        parts.append(f"{name} {seconds * 1000 / max(units, 1):.2f} ms")
    busy = use.machine_busy / (use.wall * use.cores) if use.wall > 0 else 0.0
    return (
        f"CPU per {unit}: " + ", ".join(parts) + f"; machine {busy:.0%} busy over {use.cores} cores"
    )


def _parties(use: CpuUse) -> list[tuple[str, float]]:
    parties = [
        ("service", use.service),
        ("PostgreSQL", use.postgres),
        ("load generator", use.bench),
        ("import", use.children if use.children > 0.05 else None),
    ]
    known = [(name, seconds) for name, seconds in parties if seconds is not None]
    other = use.machine_busy - sum(seconds for _, seconds in known)
    if other > 0.05 * use.wall:  # the machine is shared: whatever else ran meanwhile
        known.append((OTHER, other))
    return known


def limit(use: CpuUse, units: int, unit: str) -> str:
    """A reading of the CPU figures: what the time went to."""
    parties = _parties(use)
    ours = sorted((p for p in parties if p[0] != OTHER), key=lambda party: -party[1])
    if not ours or use.wall <= 0:
        return "no CPU figures"
    other = dict(parties).get(OTHER, 0.0) / use.wall
    shared = f", {other:.1f} cores of it by other processes" if other >= 0.2 else ""
    name, seconds = ours[0]
    busy = use.machine_busy / (use.wall * use.cores)
    of_core = seconds / use.wall
    per = f"{seconds * 1000 / max(units, 1):.2f} ms CPU per {unit}"
    pair = sum(s for _, s in ours[:2]) / use.wall
    if busy >= 0.85:
        verdict = (
            f"the {use.cores} cores are saturated ({busy:.0%} busy{shared}); of this run's "
            f"processes {name} uses the most ({per})"
        )
    elif of_core >= 0.80:
        verdict = (
            f"{name} is bound to one core ({of_core:.0%} of a core, {per}) while the machine "
            f"is {busy:.0%} busy{shared}: one process cannot use the other core"
        )
    elif pair >= 0.80:
        verdict = (
            f"{name} and {ours[1][0]} take turns: together {pair:.0%} of one core while the "
            f"machine is {busy:.0%} busy{shared}: the work is serial, one round trip at a time"
        )
    else:
        verdict = (
            f"no process is CPU-bound ({name} {of_core:.0%} of a core, machine {busy:.0%} "
            f"busy{shared}): the time goes to waiting (round trips, locks, I/O)"
        )
    return f"{verdict}. {cpu_per_unit(use, units, unit)}"


# --- goals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Goal:
    metric: str
    measured: float | None
    shown: str
    target: float
    target_shown: str
    at_most: bool  # the figure must be at most the target (else at least)
    miss: Callable[[float, float], str]
    evidence: str

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured <= self.target if self.at_most else self.measured >= self.target

    @property
    def shortfall(self) -> str:
        """By how much the goal is missed ("" when it is not)."""
        if self.met is not False or self.measured is None:
            return ""
        return self.miss(self.measured, self.target)

    @property
    def verdict(self) -> str:
        met = self.met
        if met is None:
            return "not measured"
        return "met" if met else f"**missed** {self.shortfall}"


def _over(fmt: Callable[[float], str]) -> Callable[[float, float], str]:
    return lambda value, target: f"by {fmt(value - target)} ({value / target:.1f}x the goal)"


def _under(fmt: Callable[[float], str]) -> Callable[[float, float], str]:
    return lambda value, target: f"by {fmt(target - value)} (at {value / target:.0%} of the goal)"


def _points(value: float, target: float) -> str:
    return f"by {(target - value) * 100:.0f} points"


def goals(results: Results) -> list[Goal]:
    found: list[Goal] = []
    top = max(results.options.clients)
    single = results.single[top]
    bare = results.bare[top]
    http_rate = median([run.rate for run in single])
    bare_rate = median([run.rate for run in bare])
    single_use = _total(single)
    units = sum(run.units for run in single)
    found.append(
        Goal(
            f"HTTP single-sale throughput / bare SQL, {top} clients",
            http_rate / bare_rate if bare_rate else None,
            f"{http_rate / bare_rate:.0%} ({http_rate:,.0f} / {bare_rate:,.0f} sales/s)"
            if bare_rate
            else "n/a",
            0.5,
            ">= 50 %",
            False,
            _points,
            "service: "
            + limit(single_use, units, "sale")
            + f"; {_sessions(single)} database sessions opened over {units:,} sales"
            + "; bare SQL: "
            + cpu_per_unit(_total(bare), sum(r.units for r in bare), "sale"),
        )
    )
    p99 = median([run.p99 for run in single])
    found.append(
        Goal(
            f"HTTP single-sale p99, {top} clients",
            p99,
            _ms(p99),
            0.050,
            "< 50 ms",
            True,
            _over(_ms),
            limit(single_use, units, "sale")
            + f"; {_sessions(single)} database sessions opened over {units:,} sales",
        )
    )
    batch_rate = median([run.rate for run in results.batches])
    found.append(
        Goal(
            f"POST /v1/events, batches of {results.options.batch_size}",
            batch_rate,
            _rate(batch_rate, "sales/s"),
            5000.0,
            ">= 5,000 sales/s",
            False,
            _under(lambda v: _rate(v, "sales/s")),
            limit(_total(results.batches), sum(run.units for run in results.batches), "sale"),
        )
    )
    imported = results.imported
    found.append(
        Goal(
            "bulk import (`commissions import`), whole program",
            imported.rate,
            _rate(imported.rate, "events/s"),
            20_000.0,
            ">= 20,000 events/s",
            False,
            _under(lambda v: _rate(v, "events/s")),
            limit(imported.cpu, imported.events, "event"),
        )
    )
    growth = imported.growth
    found.append(
        Goal(
            "bulk import memory: peak of 2nd half over 1st half",
            growth,
            "n/a"
            if growth is None
            else f"+{growth:.0%} ({_mb(imported.rss_first_half)} -> "
            f"{_mb(imported.rss_second_half)})",
            0.10,
            "constant (<= +10 %)",
            True,
            lambda value, target: f"by {(value - target) * 100:.0f} points",
            f"peak RSS of the import process {_mb(imported.peak_rss)}",
        )
    )
    found += _read_goals(results)
    found += _period_goals(results.periods)
    peak = results.service_peak_rss
    found.append(
        Goal(
            "service peak RSS under load",
            None if peak is None else peak / MB,
            _mb(peak),
            300.0,
            "< 300 MB",
            True,
            _over(lambda v: f"{v:,.0f} MB"),
            f"idle after start {_mb(results.service_idle_rss)}",
        )
    )
    return found


CLOSE_GOAL = 60.0
CSV_GOAL = 20.0


def _close_shown(close: Close) -> str:
    ratio = close.ratio
    versus = "" if ratio is None else f", {ratio:.1f}x the bare aggregate"
    return (
        f"{_s(close.seconds)} ({close.period}: {close.sales:,} sales, {close.lines:,} lines, "
        f"{close.statements:,} statements{versus})"
    )


def _period_goals(run: PeriodsRun) -> list[Goal]:
    found: list[Goal] = []
    closes = run.closes
    if closes:
        middle = sorted(closes, key=lambda close: close.seconds)[(len(closes) - 1) // 2]
        slowest = max(closes, key=lambda close: close.seconds)
        seconds = median([close.seconds for close in closes])
        ratios = [close.ratio for close in closes if close.ratio is not None]
        versus = f", {median(ratios):.1f}x the bare aggregate" if ratios else ""
        use = _total_cpu([close.cpu for close in closes])
        sales = sum(close.sales for close in closes)
        found.append(
            Goal(
                f"period close, median of {len(closes)} months",
                seconds,
                f"{_s(seconds)} (e.g. {middle.period}: {middle.sales:,} sales{versus})",
                CLOSE_GOAL,
                f"< {CLOSE_GOAL:.0f} s",
                True,
                _over(_s),
                limit(use, sales, "sale"),
            )
        )
        found.append(
            Goal(
                "period close, slowest month",
                slowest.seconds,
                _close_shown(slowest),
                CLOSE_GOAL,
                f"< {CLOSE_GOAL:.0f} s",
                True,
                _over(_s),
                limit(slowest.cpu, slowest.sales, "sale"),
            )
        )
    export = run.csv
    if export is not None:
        ratio = export.ratio
        versus = "" if ratio is None else f", {ratio:.1f}x a bare COPY"
        found.append(
            Goal(
                f"statements CSV, every member ({export.period})",
                export.seconds,
                f"{_s(export.seconds)} ({export.rows:,} rows, "
                f"{export.bytes / 1e6:,.1f} MB{versus})",
                CSV_GOAL,
                f"< {CSV_GOAL:.0f} s",
                True,
                _over(_s),
                limit(export.cpu, export.rows, "row"),
            )
        )
        growth = export.growth
        found.append(
            Goal(
                "statements CSV memory: service peak RSS during over before",
                growth,
                "n/a"
                if growth is None
                else f"+{growth:.0%} ({_mb(export.rss_before)} -> {_mb(export.rss_peak)})",
                0.10,
                "constant (<= +10 %)",
                True,
                lambda value, target: f"by {(value - target) * 100:.0f} points",
                f"{export.rows:,} rows, {export.bytes / 1e6:,.1f} MB streamed",
            )
        )
    return found


def _total_cpu(uses: Sequence[CpuUse]) -> CpuUse:
    use = uses[0]
    for other in uses[1:]:
        use = use.combine(other)
    return use


def _read_goal_targets(subject: Subject, endpoint: str) -> float | None:
    if endpoint == "overrides":
        return 0.100 if subject.label == "root" else 0.010
    if endpoint == "upline":
        return 0.005
    if endpoint.startswith("downline page") or endpoint == "downline deep page":
        return 0.020
    if endpoint == "downline/stats":
        if subject.label == "root":
            return 0.500
        if subject.below >= 1000:
            return 0.030
    if endpoint == "rank":
        if subject.label == "root":
            return 2.0
        if subject.label in ("leaf", "team"):  # typical members
            return 0.050
    return None


def _read_goals(results: Results) -> list[Goal]:
    found: list[Goal] = []
    for endpoint in ("overrides", "upline", "downline page 1", "downline deep page"):
        for subject in results.subjects:
            found += _read_goal(results, subject, endpoint)
    for subject in results.subjects:
        found += _read_goal(results, subject, "downline/stats")
    for subject in results.subjects:
        found += _read_goal(results, subject, "rank")
    return found


def _read_goal(results: Results, subject: Subject, endpoint: str) -> list[Goal]:
    runs = results.reads.get((subject.label, endpoint))
    target = _read_goal_targets(subject, endpoint)
    if not runs or target is None:
        return []
    value = median([run.p50 for run in runs])
    use = _total(runs)
    calls = sum(len(run.latencies) for run in runs)
    return [
        Goal(
            f"{endpoint}, {_who(subject)}",
            value,
            f"{_ms(value)} (p95 {_ms(median([run.p95 for run in runs]))})",
            target,
            f"< {_ms(target)}",
            True,
            _over(_ms),
            limit(use, calls, "call"),
        )
    ]


def _who(subject: Subject) -> str:
    return f"{subject.label} ({subject.below:,} below)"


# --- the document ---------------------------------------------------------------------------


def render(results: Results) -> str:
    out: list[str] = []
    out += _head(results)
    out += _program(results)
    table = goals(results)
    out += ["## Goals", ""]
    out += [
        "Each figure is the median over the runs (`--repeat`); for reads the median latency of "
        "each run's timed calls, and in brackets the median of each run's p95.",
        "",
    ]
    out += _table(
        ["goal", "measured", "target", "verdict"],
        [[g.metric, g.shown, g.target_shown, g.verdict] for g in table],
    )
    out += ["", "## Where a goal is missed, and what limits it", ""]
    missed = [g for g in table if g.met is False]
    if not missed:
        out.append("Every goal is met.")
    for goal in missed:
        out.append(f"* **{goal.metric}**: {goal.shown}, missed {goal.shortfall}. {goal.evidence}")
    out.append("")
    out += _details(results)
    out += _method(results)
    return "\n".join(out) + "\n"


def _others(results: Results) -> str:
    """How much CPU processes outside the benchmark used while it measured."""
    runs: list[Load | Reads] = [*results.batches]
    for clients in results.options.clients:
        runs += results.single[clients] + results.bare[clients]
    for reads in results.reads.values():
        runs += reads
    use = results.imported.cpu
    for run in runs:
        use = use.combine(run.cpu)
    for close in results.periods.closes:
        use = use.combine(close.cpu)
    if results.periods.csv is not None:
        use = use.combine(results.periods.csv.cpu)
    other = dict(_parties(use)).get(OTHER, 0.0) / use.wall if use.wall > 0 else 0.0
    return (
        f"* while it measured, processes outside the benchmark used on average {other:.2f} of "
        f"the {use.cores} cores (the machine is shared; per measurement below as "
        '"other processes")'
    )


def _head(results: Results) -> list[str]:
    machine = results.machine
    return [
        "# Benchmark results",
        "",
        f"Produced by `{results.command}` on {results.date}. Nothing here is typed by hand: "
        "the command writes this file and prints the same text.",
        "",
        "## Machine",
        "",
        f"* CPU: {machine.cpu_model}, {machine.cores} cores; memory {machine.memory_gb:.1f} GB; "
        f"{machine.system}",
        f"* PostgreSQL {machine.postgres} ({machine.server}), on the same machine as the "
        "service and the load generator: all three share the cores",
        f"* Python {machine.python}; the service runs as `python -m service serve "
        f"--workers {results.options.workers}` (default settings otherwise)",
        _others(results),
        "",
    ]


def _program(results: Results) -> list[str]:
    tree, counts, options = results.tree, results.events, results.options
    product = results.plan["categories"]["product"]
    fee = results.plan["categories"]["enrollment_fee"]
    subjects = _table(
        ["read subject", "member", "depth", "members below"],
        [[s.label, f"`{s.member_id}`", f"{s.depth:,}", f"{s.below:,}"] for s in results.subjects],
    )
    return [
        "## Program",
        "",
        f"* program `{results.program_id}`: {tree.members:,} members = a power-law tree of "
        f"{tree.tree_members:,} ({tree.generations} generations) + one chain of "
        f"{tree.chain:,} (seed {options.seed})",
        f"* fan-out: most {tree.max_fanout:,}; {tree.no_recruits_share:.1%} recruit no one; "
        f"{tree.recruiters_100_plus:,} recruit 100 or more",
        f"* depth in the tree: mean {tree.tree_depth_mean:.1f}, median {tree.tree_depth_median}, "
        f"max {tree.tree_depth_max}; over all members (with the chain): mean "
        f"{tree.depth_mean:.1f}, median {tree.depth_median}, max {tree.depth_max:,}",
        f"* events: {counts.enrolments:,} enrolments, {counts.sales:,} sales in 2026 "
        f"({counts.sales / tree.members:.2f} per member; {counts.enrolment_fees:,} enrolment "
        f"fees, {counts.subscriptions:,} subscription renewals), {counts.refunds:,} refunds: "
        f"{counts.events:,} events, {counts.bytes_written / 1e6:,.1f} MB of NDJSON, "
        f"generated in {results.generate_seconds:.1f} s (peak RSS of the generating process "
        f"{_mb(results.generator_rss)})",
        f"* plan: `product` personal {product['personal_rate']} and 10 levels "
        f"{', '.join(product['level_rates'])} (sum "
        f"{sum(float(r) for r in product['level_rates']):.2f}); `enrollment_fee` levels "
        f"{', '.join(fee['level_rates'])}; compression `{results.plan['compression']}`, no "
        f"activity rule (every member qualifies, so every sale with a 10-level upline pays 11 "
        f"lines); payout cap {results.plan['max_payout_ratio']}",
        "",
        *subjects,
        "",
    ]


def _sessions(runs: Sequence[Load]) -> str:
    counts = [run.sessions for run in runs]
    if any(count is None for count in counts):
        return "n/a"
    return f"{sum(count or 0 for count in counts):,}"


def _load_rows(label: str, clients: int, runs: Sequence[Load], unit: str) -> list[str]:
    errors = sum(run.errors for run in runs)
    return [
        label,
        str(clients),
        _rate(median([run.rate for run in runs]), unit),
        _ms(median([run.p50 for run in runs])),
        _ms(median([run.p99 for run in runs])),
        f"{sum(run.units for run in runs):,}",
        f"{errors:,}",
        _sessions(runs),
        cpu_per_unit(_total(runs), sum(run.units for run in runs), "sale").removeprefix(
            "CPU per sale: "
        ),
    ]


def _details(results: Results) -> list[str]:
    imported, options = results.imported, results.options
    out = ["## Details", "", "### Bulk import", ""]
    enrol = imported.enrol_seconds
    phases = "n/a"
    if enrol:
        sales_events = imported.events - imported.enrolments
        phases = (
            f"enrolments {_rate(imported.enrolments / enrol, 'events/s')} "
            f"({enrol:,.1f} s), then sales and refunds "
            f"{_rate(sales_events / max(imported.seconds - enrol, 1e-9), 'events/s')}"
        )
    report = imported.report
    out += [
        f"* {imported.events:,} events ({imported.file_bytes / 1e6:,.1f} MB) in "
        f"{imported.seconds:,.1f} s: **{_rate(imported.rate, 'events/s')}** ({phases})",
        f"* import report: applied {report.get('applied', 0):,}, duplicates "
        f"{report.get('duplicates', 0):,}, refused {report.get('refused', 0):,} "
        f"{report.get('refusals_by_code') or ''}",
        f"* import RSS (the process and its workers): peak {_mb(imported.peak_rss)}; peak in "
        f"the first half {_mb(imported.rss_first_half)}, in the second half "
        f"{_mb(imported.rss_second_half)}",
        f"* {cpu_per_unit(imported.cpu, imported.events, 'event')}",
        "",
        "### Ingest",
        "",
        f"Sales of December 2026 by {results.sellers:,} sellers with at least 10 members above "
        f"them; {options.requests:,} sales per run and client count, {options.batches} batches "
        f"of {options.batch_size} per run from {options.batch_clients} senders; "
        f"{options.repeat} runs.",
        "",
    ]
    rows = []
    for clients in results.options.clients:
        rows.append(_load_rows("HTTP POST /v1/sales", clients, results.single[clients], "sales/s"))
        rows.append(_load_rows("bare SQL (asyncpg)", clients, results.bare[clients], "sales/s"))
        http = median([run.rate for run in results.single[clients]])
        bare = median([run.rate for run in results.bare[clients]])
        rows.append(
            ["HTTP / bare SQL", str(clients), f"{http / bare:.0%}" if bare else "n/a"] + [""] * 6
        )
    batch_row = _load_rows(
        f"HTTP POST /v1/events x{options.batch_size}",
        options.batch_clients,
        results.batches,
        "sales/s",
    )
    rows.append(batch_row)
    out += _table(
        [
            "load",
            "clients",
            "throughput",
            "p50",
            "p99",
            "sales",
            "errors",
            "DB sessions opened",
            "CPU per sale",
        ],
        rows,
    )
    out += [
        "",
        "(For batches p50 and p99 are per batch. DB sessions opened: new connections to "
        "PostgreSQL during the runs, from `pg_stat_database.sessions`; a pool that keeps its "
        "connections opens none. For bare SQL the load generator is the application itself: "
        "asyncpg and `calculate`.)",
        "",
    ]
    failures = [
        (label, run.first_error)
        for label, runs in [
            *[(f"HTTP {c} clients", results.single[c]) for c in results.options.clients],
            *[(f"bare SQL {c} clients", results.bare[c]) for c in results.options.clients],
            ("batches", results.batches),
        ]
        for run in runs
        if run.first_error
    ]
    for label, error in failures[:5]:
        out.append(f"* first error ({label}): `{error}`")
    out += ["### Reads", ""]
    out += [
        f"Median latency over the runs (p95 in brackets), {options.read_calls} timed calls "
        f"per run after 2 untimed ones, one client; period {READ_PERIOD}; pages of {PAGE}; "
        "the deep page starts about half-way into the team (at most "
        f"{DEEP_OFFSET_MAX:,} in): "
        + ", ".join(
            f"{s.label} at {results.deep_offsets.get(s.label, 0):,}"
            for s in results.subjects
            if results.deep_offsets.get(s.label)
        )
        + ".",
        "",
    ]
    read_rows = []
    for endpoint in ENDPOINTS:
        row = [endpoint]
        for subject in results.subjects:
            runs = results.reads.get((subject.label, endpoint))
            if not runs:
                row.append("-")
                continue
            errors = sum(run.errors for run in runs)
            cell = f"{_ms(median([r.p50 for r in runs]))} ({_ms(median([r.p95 for r in runs]))})"
            row.append(cell + (f", {errors} errors" if errors else ""))
        read_rows.append(row)
    out += _table(["endpoint", *[_who(s) for s in results.subjects]], read_rows)
    read_errors = [
        (key, run.first_error)
        for key, runs in results.reads.items()
        for run in runs
        if run.first_error
    ]
    for (label, endpoint), error in read_errors[:5]:
        out.append(f"* first error ({endpoint}, {label}): `{error}`")
    out += [
        "",
        "### Memory",
        "",
        f"* service RSS: {_mb(results.service_idle_rss)} after start, "
        f"{_mb(results.service_import_rss)} at most while the import ran (idle), "
        f"**{_mb(results.service_peak_rss)}** at most under the load above",
        f"* import process RSS: peak {_mb(imported.peak_rss)}",
        "",
    ]
    out += _periods(results.periods)
    return out


def _periods(run: PeriodsRun) -> list[str]:
    out = ["### Periods", ""]
    if run.closes:
        out += [
            "Every month that has ended, closed in order through `POST /v1/periods/{period}/close` "
            "(admin key); sales of the month as generated, lines and earners as counted by the "
            "bare aggregate, statements from the close's summary. The first month was closed "
            "with `?dry_run=true` first.",
            "",
        ]
        rows = []
        for close in run.closes:
            dry = "-"
            if close.dry_run_seconds is not None:
                dry = f"{_s(close.dry_run_seconds)} ({close.dry_run_statements:,} statements)"
            ratio = close.ratio
            parties = ", ".join(
                f"{name} {seconds:,.2f} s"
                for name, seconds in _parties(close.cpu)
                if name in ("service", "PostgreSQL")
            )
            rows.append(
                [
                    close.period,
                    f"{close.sales:,}",
                    f"{close.lines:,}",
                    f"{close.earners:,}",
                    f"{close.statements:,}",
                    _s(close.seconds),
                    dry,
                    _s(close.baseline_seconds),
                    "n/a" if ratio is None else f"{ratio:.1f}x",
                    parties,
                ]
            )
        out += _table(
            [
                "period",
                "sales",
                "lines",
                "earners",
                "statements",
                "close",
                "dry run",
                "bare aggregate",
                "close / aggregate",
                "CPU during the close",
            ],
            rows,
        )
        out.append("")
        out += [
            "Ranks and bonuses each close decided (members paid as each rank; bonus totals):",
            "",
        ]
        out += _table(
            ["period", "ranks", "differential", "matching", "pool", "advancement"],
            [
                [
                    close.period,
                    ", ".join(f"{name} {count:,}" for name, count in close.ranks.items()) or "-",
                    *(
                        close.bonus.get(kind, "-")
                        for kind in ("differential", "matching", "pool", "advancement")
                    ),
                ]
                for close in run.closes
            ],
        )
        out.append("")
    else:
        out += ["No month was closed.", ""]
    export = run.csv
    if export is not None:
        ratio = export.ratio
        out += [
            f"* `GET /v1/periods/{export.period}/statements` with `Accept: text/csv`: status "
            f"{export.status}, `{export.content_type}`; {export.rows:,} rows (the header and "
            f"{export.rows - 1:,} statements; the close wrote {export.statements:,}), "
            f"{export.bytes:,} bytes, header "
            + ("as expected" if export.header_ok else "**not as expected**")
            + f"; first byte after {_s(export.first_byte_seconds)}, last after "
            f"**{_s(export.seconds)}** ({export.bytes / MB / max(export.seconds, 1e-9):,.1f} "
            "MB/s)",
            f"* bare `COPY` of the same columns: {export.copy_rows:,} rows, "
            f"{export.copy_bytes:,} bytes in {_s(export.copy_seconds)}; the CSV took "
            + ("n/a" if ratio is None else f"{ratio:.1f}x")
            + " as long",
            f"* service RSS (all its processes): {_mb(export.rss_before)} just before the "
            f"download, at most {_mb(export.rss_peak)} while it streamed",
            f"* {cpu_per_unit(export.cpu, export.rows, 'row')}",
            "",
        ]
    for error in run.errors[:5]:
        out.append(f"* error: `{error[:300]}`")
    if run.errors:
        out.append("")
    return out


def _method(results: Results) -> list[str]:
    top = max(results.options.clients)
    client = (
        "a minimal HTTP/1.1 client on asyncio streams, `--client raw`: httpx costs about "
        "1.2 ms of CPU a request, which on shared cores would be charged to the service"
        if results.options.client == "raw"
        else "httpx, `--client httpx`"
    )
    return [
        "## Method",
        "",
        "* The events are generated to a file (constant memory), then loaded by "
        "`python -m service import FILE --program ID` as a subprocess against the same "
        "server; the rate is all events over its wall time, the phases come from the "
        "importer's read position in the file (polled), its memory from polling its RSS "
        "(with children) every 0.1 s.",
        "* The service runs as `python -m service serve` on the same server, idle during the "
        f"import. Ingest: each client has its own keep-alive connection ({client}) and posts "
        "its next sale as soon as the last is answered; throughput is sales over wall time, "
        "p50 and p99 over every request of the run (connections are opened before the clock "
        "starts).",
        "* Bare SQL: the statements of `service/db/sales.py` (SALE_CONTEXT, then WRITE_SALES) "
        "with `service.domain.calculator.calculate` in between, "
        "one transaction per sale, from an asyncpg pool of as many connections as clients, "
        f"on the same sellers; the goal compares both at {top} clients.",
        "* Reads: one client calls each endpoint for each read subject, one call after the "
        "other: "
        + "; ".join(
            f"{endpoint} `GET {read_path(endpoint, '{id}', '{cursor}')}`" for endpoint in ENDPOINTS
        )
        + ".",
        "* Periods, after every measurement above (so as not to disturb them): every month "
        "with generated sales that has ended (in the program's timezone, at the time of the "
        "run) is closed in order, oldest first, by `POST /v1/periods/{period}/close` with the "
        "admin key that `program create` printed, one request at a time (httpx); the time is "
        "the request's wall time. The first month's `?dry_run=true` runs just before its "
        "close (so it reads the month first). Right after each close, the bare aggregate "
        "the close cannot do without, the month's lines added up per earner, is timed over "
        "asyncpg: `"
        + " ".join(BASELINE_AGGREGATE.split())
        + "`; run after the close, it finds in the cache the lines the close has just read, so "
        "close / aggregate is what the close adds to that aggregate (the carried balances, the "
        "members' names, writing the statements, their checks and the commit).",
        "* Statements CSV: the month with the most statements, `GET "
        "/v1/periods/{period}/statements` with `Accept: text/csv`, streamed by httpx and "
        "counted as it arrives (rows = line ends, bytes, the header compared), timed from "
        "the request to the last byte; the service's RSS (with its workers) is polled every "
        "0.1 s meanwhile, and sampled just before and after. Then a bare `COPY ("
        + " ".join(BASELINE_COPY.split())
        + ") TO STDOUT WITH (FORMAT csv, HEADER)` through asyncpg's `copy_from_query`, "
        "counted the same way (money as stored, four decimals). One download and one COPY.",
        "* CPU figures: each process's CPU time (psutil; PostgreSQL = the postmaster and all "
        "its backends; other processes = the machine's busy time minus those) over the "
        "measurement, divided by the work done.",
        "",
    ]
