"""Rank progress in an open month against what the close then freezes: every member's
figures, legs and requirements as the dashboard reads them before the close are the ones
the close stores, for a team decided as arrays and for one whose volume only Decimals hold
exactly (the close, too, decides the one as arrays and the other with Decimals)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from service.domain import leadership as domain_leadership
from service.services import leadership as service_leadership
from service.services import ranks as service_ranks
from tests.api.flows import enroll, post_sale
from tests.api.test_leadership_close import close, rank_of, store_plan
from tests.conftest import Program

OCTOBER = "2026-10-05T00:00:00Z"
MEMBERS = ("A", "B", "C", "D", "E", "F", "G")


def ladder(scale: int, share: str, above: str = "") -> dict[str, Any]:
    """Bronze, Silver, Gold with every volume `scale` times the worked one (and `above`
    appended to Gold's organization volume: digits past the cent)."""

    def volume(amount: int) -> str:
        return f"{amount * scale}.00"

    gold = volume(1000)[:-3] + (".01" if above else ".00")
    return {
        "categories": {"product": {"personal_rate": "0.10", "level_rates": ["0.05"]}},
        "ranks": [
            {"name": "Bronze", "min_personal_volume": volume(100)},
            {"name": "Silver", "min_personal_volume": volume(100),
             "min_organization_volume": volume(500), "min_active_recruits": 1},
            {"name": "Gold", "min_organization_volume": gold, "max_leg_share": share,
             "min_legs": {"count": 2, "rank": "Silver"}},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("scale", "share", "above"),
    [
        # Cap 0.50 x 1000.00: the team is decided in 62-bit integers of 10**-4.
        (1, "0.50", ""),
        # Cap 0.500001 x 100,000,000,000.01 has eight places; at that scale Gold's
        # 10**11 of volume is 10**19 units, past 62 bits, so every team is decided with
        # Decimals.
        (100_000_000, "0.500001", ".01"),
    ],
)
async def test_open_progress_is_what_the_close_then_freezes(
    client: httpx.AsyncClient,
    program: Program,
    monkeypatch: pytest.MonkeyPatch,
    scale: int,
    share: str,
    above: str,
) -> None:
    # Which way each case is decided, seen: the Decimals are counted as they are asked.
    by_decimals: list[str] = []
    decimals = service_ranks._decided_with_decimals

    async def decided_with_decimals(*args: Any) -> Any:
        by_decimals.append(args[3])
        return await decimals(*args)

    monkeypatch.setattr(service_ranks, "_decided_with_decimals", decided_with_decimals)
    closed_by_decimals: list[str] = []

    def decide_leadership(*args: Any, **named: Any) -> Any:
        closed_by_decimals.append(named["currency"])
        return domain_leadership.decide_leadership(*args, **named)

    monkeypatch.setattr(service_leadership, "decide_leadership", decide_leadership)
    await store_plan(client, program, ladder(scale, share, above))
    # A -> B -> D -> E -> G and A -> C -> F.
    for member, sponsor in (("A", None), ("B", "A"), ("C", "A"), ("D", "B"), ("E", "D"),
                            ("G", "E"), ("F", "C")):  # fmt: skip
        await enroll(client, program, member, sponsor)
    sales = {"A": 100, "B": 100, "C": 200, "E": 600, "F": 400, "G": 100}
    for member, amount in sales.items():
        await post_sale(client, program, f"S-{member}", member, f"{amount * scale}.00",
                        occurred_at=OCTOBER)  # fmt: skip

    # (in units of `scale`) G: PV 100, Bronze. E: PV 600, OV 700, one active recruit (G):
    # Silver. D: no volume, no rank; OV 700. B: PV 100, OV 800, no active recruit (D sold
    # nothing): Bronze. F: Bronze. C: PV 200, OV 600, F active: Silver. A: PV 100,
    # OV 1500; Gold counts each leg up to half of 1000: 100 + 500 + 500 = 1100 >= 1000,
    # and two legs hold a Silver: C itself, and B's through E, three levels below A.
    opened = {m: await rank_of(client, program, m, "2026-10") for m in MEMBERS}
    assert by_decimals == ([] if scale == 1 else list(MEMBERS))
    assert {m: body["rank"] for m, body in opened.items()} == {
        "A": "Gold", "B": "Bronze", "C": "Silver", "D": None, "E": "Silver", "F": "Bronze",
        "G": "Bronze",
    }  # fmt: skip
    a = opened["A"]
    assert (a["status"], a["personal_volume"], a["organization_volume"]) == (
        "open",
        f"{100 * scale}.00",
        f"{1500 * scale}.00",
    )
    assert a["legs"] == [
        {"member_id": "B", "volume": f"{800 * scale}.00", "rank": "Bronze",
         "best_rank": "Silver"},
        {"member_id": "C", "volume": f"{600 * scale}.00", "rank": "Silver",
         "best_rank": "Silver"},
    ]  # fmt: skip
    gold = a["ranks"][2]
    assert gold["qualified"] is True
    counted = Decimal(gold["requirements"][0]["actual"])
    cap = Decimal(share) * Decimal(f"{1000 * scale}{above or '.00'}")
    # The counted volume is shown rounded down to the cent: 100 + 2 x cap.
    assert counted == (100 * scale + 2 * cap).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert gold["requirements"][1:] == [
        {"requirement": "min_legs", "required": 2, "actual": 2, "met": True}
    ]

    await close(client, program, "2026-10")
    # The close decides the whole program as arrays too, or, past 62 bits, with Decimals.
    assert closed_by_decimals == ([] if scale == 1 else ["USD"])
    for member in MEMBERS:
        frozen = await rank_of(client, program, member, "2026-10")
        # The close puts the rank in force and raises the rank achieved; all else stays.
        assert (frozen["status"], frozen["rank_in_force"], frozen["achieved_rank"]) == (
            "closed", frozen["rank"], frozen["rank"]
        )  # fmt: skip
        changed = ("status", "rank_in_force", "achieved_rank")
        same = {k: v for k, v in frozen.items() if k not in changed}
        assert same == {k: v for k, v in opened[member].items() if k in same}, member
