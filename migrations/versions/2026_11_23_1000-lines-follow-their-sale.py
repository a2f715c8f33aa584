"""A sale's lines are written with it: no per-line foreign key check; sales are never deleted.

Every line of a sale is inserted by the statement that inserts the sale (WRITE_SALES), and
every reversal line under a lock on its sale, so the foreign key from commission_lines to
sales was checked eleven times a sale for nothing but the cost (a third of the write). What
it also guaranteed, that no sale with lines disappears, a trigger now guarantees for every
sale. The claim of an applied request is answered by an update in the same transaction:
free room on its page makes that update a HOT one, with no new index entry.

Revision ID: 0008_lines_follow_their_sale
Revises: 0007_skipped_levels
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008_lines_follow_their_sale"
down_revision: str | None = "0007_skipped_levels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(
        "fk_commission_lines_program_id_sale_id", "commission_lines", type_="foreignkey"
    )
    op.execute(
        """
        CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'rows of % are never deleted', TG_TABLE_NAME;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER sales_never_deleted BEFORE DELETE ON sales
        FOR EACH ROW EXECUTE FUNCTION refuse_delete()
        """
    )
    op.execute("ALTER TABLE applied_requests SET (fillfactor = 70)")


def downgrade() -> None:
    op.execute("ALTER TABLE applied_requests RESET (fillfactor)")
    op.execute("DROP TRIGGER sales_never_deleted ON sales")
    op.execute("DROP FUNCTION refuse_delete()")
    op.create_foreign_key(
        "fk_commission_lines_program_id_sale_id",
        "commission_lines",
        "sales",
        ["program_id", "sale_id"],
        ["program_id", "sale_id"],
    )
