"""Claim an event id (or Idempotency-Key) before applying it.

A request first inserts its record with status 0 (claimed); a concurrent request for the
same key blocks on that row until the first commits, then finds the answer. The claim is
completed (status and response) or withdrawn in the same transaction, so a status-0 row is
never seen by anyone else. The append-only rule now spares only such unanswered claims.

Revision ID: 0004_claims
Revises: 0003_intake
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004_claims"
down_revision: str | None = "0003_intake"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP TRIGGER applied_requests_append_only ON applied_requests")
    op.execute(
        """
        CREATE TRIGGER applied_requests_append_only BEFORE UPDATE OR DELETE ON applied_requests
        FOR EACH ROW WHEN (OLD.status <> 0) EXECUTE FUNCTION refuse_history_rewrite()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER applied_requests_append_only ON applied_requests")
    op.execute(
        """
        CREATE TRIGGER applied_requests_append_only BEFORE UPDATE OR DELETE ON applied_requests
        FOR EACH ROW EXECUTE FUNCTION refuse_history_rewrite()
        """
    )
