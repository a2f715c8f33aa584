"""Each program gets a secret key that signs the cursors of its lists.

A list's `next_cursor` carries a position (a member id, a line id, ...) that the next page
starts from. Signed (HMAC-SHA256) with a key that only the database holds, a cursor that
the service did not give out is refused before its position is even read. The key lives
with the program, so every replica of the service, before and after a restart, signs and
checks with the same one, and a cursor of one program means nothing in another.

32 random bytes, from two version-4 UUIDs (gen_random_uuid draws from the server's strong
random source: 244 random bits). The default is volatile, so adding the column gives each
existing program a key of its own, and every new program gets one as it is inserted.

Revision ID: 0011_cursor_keys
Revises: 0010_skipped_level_decisions
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_cursor_keys"
down_revision: str | None = "0010_skipped_level_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_KEY = (
    "decode(replace(CAST(gen_random_uuid() AS text) || CAST(gen_random_uuid() AS text),"
    " '-', ''), 'hex')"
)


def upgrade() -> None:
    op.add_column(
        "programs",
        sa.Column(
            "cursor_key", sa.LargeBinary(), nullable=False, server_default=sa.text(RANDOM_KEY)
        ),
    )
    op.create_check_constraint(
        "ck_programs_cursor_key_length", "programs", "octet_length(cursor_key) >= 32"
    )


def downgrade() -> None:
    op.drop_constraint("ck_programs_cursor_key_length", "programs", type_="check")
    op.drop_column("programs", "cursor_key")
