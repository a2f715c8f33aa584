"""Programs, API keys and the sponsor genealogy.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "programs",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("timezone", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", name="pk_programs"),
    )
    op.create_table(
        "api_keys",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("program_id", "key_id", name="pk_api_keys"),
        sa.UniqueConstraint("program_id", "key_hash", name="uq_api_keys_program_id_key_hash"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_api_keys_program_id"
        ),
    )
    op.create_table(
        "members",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("sponsor_id", sa.Text(), nullable=True),
        sa.Column("enrolled_sponsor_id", sa.Text(), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("rank", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "member_id", name="pk_members"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_members_program_id"
        ),
        sa.ForeignKeyConstraint(
            ["program_id", "sponsor_id"],
            ["members.program_id", "members.member_id"],
            name="fk_members_program_id_sponsor_id",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'inactive', 'terminated')", name="ck_members_status"
        ),
        sa.CheckConstraint(
            "sponsor_id IS NULL OR sponsor_id <> member_id", name="ck_members_not_own_sponsor"
        ),
    )
    op.create_index("ix_members_sponsor", "members", ["program_id", "sponsor_id", "member_id"])
    op.create_table(
        "member_moves",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("move_id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("member_id", sa.Text(), nullable=False),
        sa.Column("from_sponsor_id", sa.Text(), nullable=True),
        sa.Column("to_sponsor_id", sa.Text(), nullable=True),
        sa.Column("moved_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "move_id", name="pk_member_moves"),
        sa.ForeignKeyConstraint(
            ["program_id", "member_id"],
            ["members.program_id", "members.member_id"],
            name="fk_member_moves_program_id_member_id",
        ),
    )
    op.create_index(
        "ix_member_moves_member", "member_moves", ["program_id", "member_id", "move_id"]
    )
    # The move history is append-only: the database itself refuses to rewrite it.
    op.execute(
        """
        CREATE FUNCTION refuse_history_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER member_moves_append_only BEFORE UPDATE OR DELETE ON member_moves
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )


def downgrade() -> None:
    op.drop_table("member_moves")
    op.execute("DROP FUNCTION refuse_history_rewrite()")
    op.drop_table("members")
    op.drop_table("api_keys")
    op.drop_table("programs")
