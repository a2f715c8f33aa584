"""The synthetic program: a sponsor tree with a power-law fan-out plus one long chain, and a
year of sales, written as NDJSON webhook events in constant memory.

Tree model (a Galton-Watson process grown generation by generation, in breadth-first order):
each member recruits k members, k = 0 with probability `P_NO_RECRUITS`, otherwise k follows a
discrete power law P(k) ~ k^-`FANOUT_EXPONENT` on 1..`MAX_FANOUT`, so the mean is about 1.32
recruits. A generation whose size strays outside `GROWTH_BAND` times the mean growth is drawn
again (with so heavy a tail, small generations otherwise swing between extinction and
explosion, and the depth of the whole tree would hang on luck). With the default seed the
tree has 47 generations at 1,000,000 members (median depth 44) and 31 at 20,000 (median 28):
most members recruit no one, a few recruit hundreds. The tree stops growing when it has
`members - chain` members; then a chain of `chain` members, each the only recruit of the one
before, hangs below a member of median depth. Member ids are
`M<n>` in enrolment order (a sponsor is always enrolled before their recruits); the root is
`M0`.

Events: every `member.enrolled` first (enrolments spread evenly from 2025-01-01 to
2026-06-30), then the sales of 2026 in `occurred_at` order: each day, every member enrolled
before that day sells at the same expected rate (uniformly chosen sellers), so that the
program has `sales_per_member` sales per member on average; a member who joined in 2026 also
pays an enrolment fee when they join (`enrollment_fee`). A quarter of product sales are
subscription renewals (`subscription_id`), 30 % are sold to members, and 1 % are refunded
(70 % fully, the rest half) 1-20 days later, within the year.

Memory is O(members) small integer arrays (sponsor, depth, recruits, team size: 16 bytes a
member), never O(events): the events are written a day at a time.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import random
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

P_NO_RECRUITS = 0.68
FANOUT_EXPONENT = 2.0
MAX_FANOUT = 500
GROWTH_BAND = (0.75, 1.33)

ENROL_FROM = datetime(2025, 1, 1, tzinfo=UTC)
ENROL_TO = datetime(2026, 7, 1, tzinfo=UTC)
YEAR_FROM = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 365

PRICES = ("19.99", "29.99", "49.00", "59.95", "99.00", "149.00", "249.00")
PRICE_WEIGHTS = (20, 25, 20, 15, 12, 6, 2)
SUBSCRIPTION_PRICE = "39.00"
ENROLLMENT_FEE = "49.00"
SUBSCRIPTION_SHARE = 0.25
MEMBER_CUSTOMER_SHARE = 0.30
REFUND_SHARE = 0.01
CURRENCY = "USD"


def member_id(index: int) -> str:
    return f"M{index}"


@dataclass
class Tree:
    """The genealogy as arrays indexed by enrolment order (index 0 is the root)."""

    sponsor: array[int]
    depth: array[int]
    recruits: array[int]
    below: array[int]
    tree_members: int
    chain: int
    generations: int

    @property
    def members(self) -> int:
        return len(self.sponsor)


def _fanout_table() -> list[float]:
    """Cumulative weights of k = 1..MAX_FANOUT for the power law."""
    weights = [math.pow(k, -FANOUT_EXPONENT) for k in range(1, MAX_FANOUT + 1)]
    total = sum(weights)
    cumulative: list[float] = []
    running = 0.0
    for weight in weights:
        running += weight / total
        cumulative.append(running)
    return cumulative


def mean_recruits() -> float:
    """The expected number of recruits of a member."""
    weights = [math.pow(k, -FANOUT_EXPONENT) for k in range(1, MAX_FANOUT + 1)]
    tail_mean = sum(k * w for k, w in zip(range(1, MAX_FANOUT + 1), weights, strict=True))
    return (1 - P_NO_RECRUITS) * tail_mean / sum(weights)


def build_tree(members: int, chain: int, rng: random.Random) -> Tree:
    """Grow the power-law tree to `members - chain` members, then hang the chain below it."""
    if members < 1 or chain < 0 or chain >= members:
        raise ValueError("need at least one member, and a chain shorter than the program")
    tree_members = members - chain
    cumulative = _fanout_table()
    mean = mean_recruits()
    sponsor = array("i", [-1])
    depth = array("i", [0])
    start, end, generations = 0, 1, 1
    while len(sponsor) < tree_members:
        children: list[int] = []
        # A generation whose size strays far from the mean growth is drawn again, so that the
        # depth of the tree does not hang on the luck of its first few generations (a heavy
        # tail makes small generations swing between extinction and explosion).
        size = end - start
        low = max(1.0, GROWTH_BAND[0] * mean * size)
        high = max(3.0, GROWTH_BAND[1] * mean * size)
        for _attempt in range(10_000):
            children = [
                0
                if rng.random() < P_NO_RECRUITS
                else bisect.bisect_left(cumulative, rng.random()) + 1
                for _ in range(start, end)
            ]
            if low <= sum(children) <= high:
                break
        else:  # pragma: no cover - practically impossible
            children = [1] * size
        for parent, count in zip(range(start, end), children, strict=True):
            take = min(count, tree_members - len(sponsor))
            sponsor.extend([parent] * take)
            depth.extend([depth[parent] + 1] * take)
        start, end = end, len(sponsor)
        generations += 1
    if chain:
        anchor = _median_depth_member(depth, tree_members)
        previous = anchor
        for _ in range(chain):
            sponsor.append(previous)
            depth.append(depth[previous] + 1)
            previous = len(sponsor) - 1
    recruits = array("i", bytes(4 * members))
    below = array("i", bytes(4 * members))
    for index in range(members - 1, 0, -1):
        parent = sponsor[index]
        recruits[parent] += 1
        below[parent] += below[index] + 1
    return Tree(sponsor, depth, recruits, below, tree_members, chain, generations)


def _median_depth_member(depth: array[int], limit: int) -> int:
    """The last member (of the first `limit`) at the median depth of those members."""
    median = _median(depth[:limit])
    for index in range(limit - 1, -1, -1):
        if depth[index] == median:
            return index
    return 0  # pragma: no cover - the median is some member's depth


def _median(values: array[int]) -> int:
    """The (lower) median of small non-negative integers, by counting."""
    counts: dict[int, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    middle, seen = (len(values) - 1) // 2, 0
    for value in sorted(counts):
        seen += counts[value]
        if seen > middle:
            return value
    raise ValueError("no values")


@dataclass(frozen=True)
class TreeStats:
    members: int
    tree_members: int
    chain: int
    generations: int
    max_fanout: int
    no_recruits_share: float
    recruiters_100_plus: int
    depth_mean: float
    depth_median: int
    depth_max: int
    tree_depth_mean: float
    tree_depth_median: int
    tree_depth_max: int


def tree_stats(tree: Tree) -> TreeStats:
    tree_depths = tree.depth[: tree.tree_members]
    return TreeStats(
        members=tree.members,
        tree_members=tree.tree_members,
        chain=tree.chain,
        generations=tree.generations,
        max_fanout=max(tree.recruits),
        no_recruits_share=sum(1 for r in tree.recruits if r == 0) / tree.members,
        recruiters_100_plus=sum(1 for r in tree.recruits if r >= 100),
        depth_mean=sum(tree.depth) / tree.members,
        depth_median=_median(tree.depth),
        depth_max=max(tree.depth),
        tree_depth_mean=sum(tree_depths) / tree.tree_members,
        tree_depth_median=_median(tree_depths),
        tree_depth_max=max(tree_depths),
    )


@dataclass(frozen=True)
class Subject:
    """A member whose reads are timed."""

    label: str
    member_id: str
    below: int
    depth: int


def read_subjects(tree: Tree, team_target: int) -> list[Subject]:
    """A leaf of median depth, a member with about `team_target` below, the root, and (with a
    chain) the chain's first and last members."""
    tree_part = range(tree.tree_members)
    median = _median(tree.depth[: tree.tree_members])
    leaf = next(
        (i for i in reversed(tree_part) if tree.recruits[i] == 0 and tree.depth[i] == median),
        tree.tree_members - 1,
    )
    # A team that grew naturally: not one of the chain's sponsors, whose teams hold the chain.
    above_chain = set()
    if tree.chain:
        index = tree.sponsor[tree.tree_members]
        while index >= 0:
            above_chain.add(index)
            index = tree.sponsor[index]
    team = min(
        (i for i in tree_part if i not in above_chain),
        key=lambda i: (abs(tree.below[i] - team_target), i),
        default=0,
    )

    def subject(label: str, index: int) -> Subject:
        return Subject(label, member_id(index), tree.below[index], tree.depth[index])

    subjects = [
        subject("leaf", leaf),
        subject("team", team),
        subject("root", 0),
    ]
    if tree.chain:
        subjects.append(subject("chain head", tree.tree_members))
        subjects.append(subject("chain tail", tree.members - 1))
    return subjects


def sellers_with_full_upline(tree: Tree, levels: int, count: int, rng: random.Random) -> list[str]:
    """Up to `count` distinct members with at least `levels` members above them (or, when
    there are none, of the deepest level), chosen at random."""
    wanted = levels if max(tree.depth) >= levels else max(tree.depth)
    draw = rng.sample(range(tree.members), min(tree.members, 4 * count))
    chosen = [i for i in draw if tree.depth[i] >= wanted][:count]
    if len(chosen) < count:  # few members are deep enough: look at every one
        eligible = [i for i in range(tree.members) if tree.depth[i] >= wanted]
        chosen = rng.sample(eligible, min(count, len(eligible)))
    return [member_id(i) for i in chosen]


@dataclass
class EventCounts:
    enrolments: int = 0
    sales: int = 0
    enrolment_fees: int = 0
    subscriptions: int = 0
    refunds: int = 0
    bytes_written: int = 0
    sales_offset: int = 0  # byte offset of the first sale event in the file
    by_month: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        return self.enrolments + self.sales + self.refunds


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _enrolled_at(index: int, members: int) -> datetime:
    span = (ENROL_TO - ENROL_FROM).total_seconds()
    return ENROL_FROM + timedelta(seconds=int(span * index / members))


def _enrolled_before(moment: datetime, members: int) -> int:
    """How many members enrolled strictly before `moment` (enrolments are in id order)."""
    span = (ENROL_TO - ENROL_FROM).total_seconds()
    offset = (moment - ENROL_FROM).total_seconds()
    if offset <= 0:
        return 0
    # _enrolled_at(i) < moment  <=>  int(span * i / members) < offset
    estimate = min(members, math.ceil(offset * members / span) + 1)
    while estimate > 0 and _enrolled_at(estimate - 1, members) >= moment:
        estimate -= 1
    while estimate < members and _enrolled_at(estimate, members) < moment:
        estimate += 1
    return estimate


def _line(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":")) + "\n"


def write_events(
    tree: Tree, path: Path, *, sales_per_member: float, rng: random.Random
) -> EventCounts:
    """Write the program's events to `path` (NDJSON) and count them."""
    counts = EventCounts()
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for index in range(tree.members):
            at = _stamp(_enrolled_at(index, tree.members))
            parent = tree.sponsor[index]
            written = _write(
                out,
                {
                    "id": f"e-m-{index}",
                    "type": "member.enrolled",
                    "occurred_at": at,
                    "data": {
                        "id": member_id(index),
                        "sponsor_id": None if parent < 0 else member_id(parent),
                        "enrolled_at": at,
                    },
                },
            )
            counts.enrolments += 1
            counts.bytes_written += written
        counts.sales_offset = counts.bytes_written
        for line in _sales(tree.members, sales_per_member, rng, counts):
            out.write(line)
            counts.bytes_written += len(line.encode())
    return counts


def _write(out: IO[str], event: dict[str, Any]) -> int:
    line = _line(event)
    out.write(line)
    return len(line.encode())


def _sales(
    members: int, sales_per_member: float, rng: random.Random, counts: EventCounts
) -> Iterator[str]:
    """The year's sale and refund events in time order, a day at a time."""
    day_starts = [YEAR_FROM + timedelta(days=d) for d in range(DAYS + 1)]
    enrolled = [_enrolled_before(moment, members) for moment in day_starts]
    fees_total = enrolled[-1] - enrolled[0]
    seller_days = sum(enrolled[:DAYS])
    product_total = max(0, round(sales_per_member * members) - fees_total)
    per_seller_day = product_total / seller_days if seller_days else 0.0
    year_end = day_starts[-1]
    pending: list[tuple[datetime, int, dict[str, Any]]] = []  # refunds due, by time
    carry = 0.0
    sale_number = refund_number = 0
    for day in range(DAYS):
        start, end = day_starts[day], day_starts[day + 1]
        todays: list[tuple[datetime, int, dict[str, Any]]] = []
        # Enrolment fees of the members who joined today, when they joined.
        for index in range(enrolled[day], enrolled[day + 1]):
            at = _enrolled_at(index, members)
            sale_number += 1
            todays.append((at, sale_number, _sale(sale_number, index, ENROLLMENT_FEE, at)))
            todays[-1][2]["data"]["category"] = "enrollment_fee"
            counts.enrolment_fees += 1
        carry += per_seller_day * enrolled[day]
        quota = int(carry)
        carry -= quota
        if day == DAYS - 1:  # whatever rounding left over, on the last day
            quota += round(carry)
        for _ in range(quota if enrolled[day] else 0):
            seller = rng.randrange(enrolled[day])
            at = start + timedelta(seconds=rng.randrange(86_400))
            sale_number += 1
            if rng.random() < SUBSCRIPTION_SHARE:
                event = _sale(sale_number, seller, SUBSCRIPTION_PRICE, at)
                event["data"]["subscription_id"] = f"SUB-{member_id(seller)}"
                counts.subscriptions += 1
            else:
                price = rng.choices(PRICES, PRICE_WEIGHTS)[0]
                event = _sale(sale_number, seller, price, at)
            if rng.random() < MEMBER_CUSTOMER_SHARE:
                event["data"]["customer"] = "member"
            todays.append((at, sale_number, event))
            if rng.random() < REFUND_SHARE:
                refund_at = at + timedelta(days=rng.randint(1, 20), seconds=rng.randrange(3600))
                if refund_at < year_end:
                    refund_number += 1
                    amount = event["data"]["amount"]
                    if rng.random() >= 0.7:
                        amount = _half(amount)
                    refund = {
                        "id": f"e-r-{refund_number}",
                        "type": "sale.refunded",
                        "occurred_at": _stamp(refund_at),
                        "data": {
                            "sale_id": event["data"]["id"],
                            "id": f"R{refund_number}",
                            "amount": amount,
                            "occurred_at": _stamp(refund_at),
                        },
                    }
                    heapq.heappush(pending, (refund_at, -refund_number, refund))
        while pending and pending[0][0] < end:
            todays.append(heapq.heappop(pending))
        todays.sort(key=lambda item: (item[0], item[1]))
        month = start.strftime("%Y-%m")
        for _, _, event in todays:
            if event["type"] == "sale.refunded":
                counts.refunds += 1
            else:
                counts.sales += 1
                counts.by_month[month] = counts.by_month.get(month, 0) + 1
            yield _line(event)


def _sale(number: int, seller: int, amount: str, at: datetime) -> dict[str, Any]:
    stamp = _stamp(at)
    return {
        "id": f"e-s-{number}",
        "type": "sale.completed",
        "occurred_at": stamp,
        "data": {
            "id": f"S{number}",
            "member_id": member_id(seller),
            "amount": amount,
            "currency": CURRENCY,
            "occurred_at": stamp,
        },
    }


def _half(amount: str) -> str:
    cents = int(amount.replace(".", ""))
    half = cents // 2
    return f"{half // 100}.{half % 100:02d}"
