"""Webhook signing secrets and the permanent memory of applied events and idempotency keys.

Revision ID: 0003_intake
Revises: 0002_engine
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_intake"
down_revision: str | None = "0002_engine"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_now = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "webhook_secrets",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("secret_id", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("program_id", "secret_id", name="pk_webhook_secrets"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_webhook_secrets_program_id"
        ),
    )
    # One row per applied event (`scope` 'event') or REST Idempotency-Key (`scope` 'http'):
    # what the request was (its fingerprint) and what it answered, kept forever.
    op.create_table(
        "applied_requests",
        sa.Column("program_id", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("request_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("response", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_now, nullable=False),
        sa.PrimaryKeyConstraint("program_id", "scope", "request_key", name="pk_applied_requests"),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.program_id"], name="fk_applied_requests_program_id"
        ),
        sa.CheckConstraint("scope IN ('event', 'http')", name="ck_applied_requests_scope"),
    )
    op.execute(
        """
        CREATE TRIGGER applied_requests_append_only BEFORE UPDATE OR DELETE ON applied_requests
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )


def downgrade() -> None:
    op.drop_table("applied_requests")
    op.drop_table("webhook_secrets")
