"""The migrations: what they may import, and what they do to stored data."""

import sys
from typing import Any

import httpx
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.migrate import alembic_config, migrations_dir
from tests.api.flows import enroll_chain, post_sale, put_plan
from tests.conftest import Program
from tests.imports import imported_modules

ALLOWED = {"alembic", "sqlalchemy"}
"""Besides the standard library: a migration freezes what it needs of the live code, so that
later edits of `service` can never change what an old migration does."""


def test_migrations_import_no_live_code() -> None:
    files = sorted((migrations_dir() / "versions").glob("*.py"))
    assert len(files) >= 10
    foreign = {
        path.name: sorted(
            module
            for module in imported_modules(path.read_text(), package="migrations.versions")
            if module.partition(".")[0] not in sys.stdlib_module_names | ALLOWED
        )
        for path in files
    }
    assert {name: modules for name, modules in foreign.items() if modules} == {}


async def _migrate(connection: AsyncConnection, direction: str, revision: str) -> None:
    """Run the migrations down or up to `revision` inside the test's transaction."""

    def run(sync_connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = sync_connection
        getattr(command, direction)(config, revision)

    await connection.run_sync(run)


async def _stored(connection: AsyncConnection, program_id: str) -> dict[str, Any]:
    rows = await connection.execute(
        text("SELECT sale_id, skipped_levels FROM sales WHERE program_id = :p ORDER BY sale_id"),
        {"p": program_id},
    )
    return {sale_id: levels for sale_id, levels in rows}


async def test_skipped_levels_become_decisions_and_back(
    client: httpx.AsyncClient, program: Program, connection: AsyncConnection
) -> None:
    await put_plan(
        client,
        program,
        categories={"product": {"personal_rate": "0.30", "level_rates": ["0.20", "0", "0.20"]}},
        max_payout_ratio="0.35",
    )
    # R <- A <- B <- C <- S; A is inactive; no compression.
    await enroll_chain(client, program, "R", "A", "B", "C", "S")
    response = await client.patch(
        "/v1/members/A", json={"status": "inactive"}, headers=program.headers
    )
    assert response.status_code == 200
    # S 0.30 and C 0.20 add up to 0.50 > cap 0.35: scaled by 0.7 to 0.21 and 0.14 (cut to
    # ten decimals). O-1: C gets 0.03 x 0.14 = 0.0042 -> 0.00 (zero_amount). O-2: C gets
    # 100 x 0.14 = 14.00. B holds level 2, whose rate is 0; A is inactive; R is level 4,
    # beyond the plan's 3 levels.
    await post_sale(client, program, "O-1", "S", "0.03")
    await post_sale(client, program, "O-2", "S", "100.00")
    answers = {
        sale: (await client.get(f"/v1/sales/{sale}", headers=program.headers)).json()
        for sale in ("O-1", "O-2")
    }
    fields = ["level", "member_id", "paid", "paid_level", "rate", "amount", "reason"]
    assert all(list(x) == fields for x in answers["O-1"]["levels"])
    assert [tuple(x.values()) for x in answers["O-1"]["levels"]] == [
        (1, "C", False, 1, "0.14", "0.00", "zero_amount"),
        (2, "B", False, 2, "0.00", "0.00", "zero_rate"),
        (3, "A", False, None, None, None, "inactive"),
        (4, "R", False, None, None, None, "beyond_depth"),
    ]
    assert answers["O-2"]["levels"][0] == {
        "level": 1,
        "member_id": "C",
        "paid": True,
        "paid_level": 1,
        "rate": "0.14",
        "amount": "14.00",
        "reason": None,
    }
    assert answers["O-2"]["levels"][1:] == answers["O-1"]["levels"][1:]

    written = [
        {"level": 1, "member_id": "C", "reason": "zero_amount", "paid_level": 1}
        | {"rate": "0.1400000000", "amount": "0.00"},
        {"level": 2, "member_id": "B", "reason": "zero_rate", "paid_level": 2}
        | {"rate": "0", "amount": "0.00"},
        {"level": 3, "member_id": "A", "reason": "inactive"},
        {"level": 4, "member_id": "R", "reason": "beyond_depth"},
    ]
    assert await _stored(connection, program.id) == {"O-1": written, "O-2": written[1:]}

    await _migrate(connection, "downgrade", "0009_team_volumes_by_label")
    # As the API printed them, which is how they were stored before.
    printed = answers["O-1"]["levels"]
    assert await _stored(connection, program.id) == {"O-1": printed, "O-2": printed[1:]}

    await _migrate(connection, "upgrade", "head")
    upgraded = [
        {"level": 1, "member_id": "C", "reason": "zero_amount", "paid_level": 1}
        | {"rate": "0.14", "amount": "0.00"},
        {"level": 2, "member_id": "B", "reason": "zero_rate", "paid_level": 2}
        | {"rate": "0.00", "amount": "0.00"},
        {"level": 3, "member_id": "A", "reason": "inactive"},
        {"level": 4, "member_id": "R", "reason": "beyond_depth"},
    ]
    assert await _stored(connection, program.id) == {"O-1": upgraded, "O-2": upgraded[1:]}
    for sale, answer in answers.items():
        again = await client.get(f"/v1/sales/{sale}", headers=program.headers)
        assert again.json() == answer
