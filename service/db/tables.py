"""The schema. Every primary key starts with `program_id` (the Citus distribution column)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

programs = Table(
    "programs",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Signs the cursors of the program's lists (migration 0011): random, given by the database.
    Column(
        "cursor_key",
        LargeBinary,
        nullable=False,
        server_default=text(
            "decode(replace(CAST(gen_random_uuid() AS text) || CAST(gen_random_uuid() AS text),"
            " '-', ''), 'hex')"
        ),
    ),
    # The oldest open period ("YYYY-MM"); null while no period is closed (migration 0012).
    Column("open_from", Text, nullable=True),
    PrimaryKeyConstraint("program_id"),
    CheckConstraint("octet_length(cursor_key) >= 32", name="cursor_key_length"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("key_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("program_id", "key_id"),
    UniqueConstraint("program_id", "key_hash"),
    ForeignKeyConstraint(["program_id"], ["programs.program_id"]),
)

members = Table(
    "members",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("sponsor_id", Text, nullable=True),
    Column("enrolled_sponsor_id", Text, nullable=True),
    Column("enrolled_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("name", Text, nullable=True),
    # The rank in force (paid-as in the latest closed period) and the highest ever held.
    Column("rank", Text, nullable=True),
    Column("achieved_rank", Text, nullable=True),
    # The code the member hands out (recruits enrol under them by it): unique in the program
    # whatever its case (ux_members_referral_code on lower(referral_code)).
    Column("referral_code", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # Derived from the adjacency list (service/domain/labels.py): subtree = (lo, hi) range.
    Column("lo", BigInteger, nullable=False),
    Column("hi", BigInteger, nullable=False),
    Column("depth", Integer, nullable=False),
    PrimaryKeyConstraint("program_id", "member_id"),
    ForeignKeyConstraint(["program_id"], ["programs.program_id"]),
    ForeignKeyConstraint(["program_id", "sponsor_id"], ["members.program_id", "members.member_id"]),
    CheckConstraint("status IN ('active', 'inactive', 'terminated')", name="status"),
    CheckConstraint("sponsor_id IS NULL OR sponsor_id <> member_id", name="not_own_sponsor"),
    Index("ix_members_sponsor", "program_id", "sponsor_id", "member_id"),
    Index(
        "ux_members_referral_code",
        "program_id",
        text("lower(referral_code)"),
        unique=True,
        postgresql_where=text("referral_code IS NOT NULL"),
    ),
)

member_moves = Table(
    "member_moves",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("move_id", BigInteger, Identity(always=True), nullable=False),
    Column("member_id", Text, nullable=False),
    Column("from_sponsor_id", Text, nullable=True),
    Column("to_sponsor_id", Text, nullable=True),
    Column("moved_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "move_id"),
    ForeignKeyConstraint(["program_id", "member_id"], ["members.program_id", "members.member_id"]),
    Index("ix_member_moves_member", "program_id", "member_id", "move_id"),
)

MONEY = Numeric(19, 4)
RATE = Numeric(11, 10)

plan_versions = Table(
    "plan_versions",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("effective_from", DateTime(timezone=True), nullable=False),
    Column("body", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "version"),
)

sales = Table(
    "sales",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("sale_id", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("volume", MONEY, nullable=False),
    Column("currency", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("subscription_id", Text, nullable=True),
    Column("customer", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("period", Text, nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("refunded", MONEY, nullable=False, server_default="0"),
    Column("refunded_volume", MONEY, nullable=False, server_default="0"),
    Column("fingerprint", Text, nullable=False),
    # The upline levels the sale did not pay, and why; the paid ones are its override lines.
    Column("skipped_levels", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "sale_id"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("refund_id", Text, nullable=False),
    Column("sale_id", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("volume", MONEY, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("period", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "refund_id"),
)

commission_lines = Table(
    "commission_lines",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("line_id", BigInteger, Identity(always=True), nullable=False),
    Column("sale_id", Text, nullable=True),  # null for bonus lines only
    Column("refund_id", Text, nullable=True),
    Column("earner_id", Text, nullable=False),
    Column("source_member_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("level", Integer, nullable=False),
    Column("paid_level", Integer, nullable=False),
    Column("rate", RATE, nullable=False),
    Column("base", MONEY, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("period", Text, nullable=False),
    Column("plan_version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("bonus", Text, nullable=True),  # the kind of bonus of a `bonus` line
    PrimaryKeyConstraint("program_id", "line_id"),
)

member_period_volumes = Table(
    "member_period_volumes",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("volume", Numeric, nullable=False, server_default="0"),
    Column("residual_volume", Numeric, nullable=False, server_default="0"),
    Column("sales", Integer, nullable=False, server_default="0"),
    # The member's tree label and depth, as on `members` (a trigger keeps them so): a team's
    # volume in a period is a range scan of `lo` (migration 0009).
    Column("lo", BigInteger, nullable=False),
    Column("depth", Integer, nullable=False),
    PrimaryKeyConstraint("program_id", "member_id", "period"),
    Index("ix_member_period_volumes_lo", "program_id", "period", "lo"),
)

closed_periods = Table(
    "closed_periods",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    # The summary the close answered, answered again by every later close of the period.
    Column("summary", JSONB, nullable=False),
    PrimaryKeyConstraint("program_id", "period"),
)

statements = Table(
    "statements",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("name", Text, nullable=True),
    Column("rank", Text, nullable=True),
    Column("personal", MONEY, nullable=False),
    Column("override", MONEY, nullable=False),
    Column("reversal", MONEY, nullable=False),
    Column("bonus", MONEY, nullable=False),
    Column("earned", MONEY, nullable=False),
    Column("carried_in", MONEY, nullable=False),
    Column("payable", MONEY, nullable=False),
    Column("carried_out", MONEY, nullable=False),
    PrimaryKeyConstraint("program_id", "period", "member_id"),
)

# The figures that decided each member's paid-as rank in a closed period (migration 0013).
period_ranks = Table(
    "period_ranks",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("period", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("sponsor_id", Text, nullable=True),
    Column("active", Boolean, nullable=False),
    Column("personal_volume", Numeric, nullable=False),
    Column("organization_volume", Numeric, nullable=False),
    Column("active_recruits", Integer, nullable=False),
    Column("rank", Text, nullable=True),
    Column("best_rank", Text, nullable=True),
    PrimaryKeyConstraint("program_id", "period", "member_id"),
    Index("ix_period_ranks_sponsor", "program_id", "period", "sponsor_id"),
)

# Each advancement bonus paid, once per member and rank name, ever (migration 0013).
advancements = Table(
    "advancements",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("member_id", Text, nullable=False),
    Column("rank", Text, nullable=False),
    Column("period", Text, nullable=False),
    PrimaryKeyConstraint("program_id", "member_id", "rank"),
)

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("secret_id", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("program_id", "secret_id"),
)

applied_requests = Table(
    "applied_requests",
    metadata,
    Column("program_id", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("request_key", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("response", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("program_id", "scope", "request_key"),
)

integrations = Table(
    "integrations",
    metadata,
    Column("integration_id", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("platform", Text, nullable=False),
    Column("secret", Text, nullable=False),  # the platform's HMAC key: never printed again
    Column("attribution_field", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    PrimaryKeyConstraint("integration_id"),
)

store_deliveries = Table(
    "store_deliveries",
    metadata,
    Column("integration_id", Text, nullable=False),
    Column("delivery_id", Text, nullable=False),
    Column("program_id", Text, nullable=False),
    Column("delivery_key", Text, nullable=False),
    Column("topic", Text, nullable=False),
    Column("status", Text, nullable=False),  # received, applied, parked, refused
    Column("code", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Column("waiting_for", Text, nullable=True),
    Column("sale_id", Text, nullable=True),
    Column("headers", JSONB, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("integration_id", "delivery_id"),
    UniqueConstraint("integration_id", "delivery_key"),
)

store_references = Table(
    "store_references",
    metadata,
    Column("integration_id", Text, nullable=False),
    Column("reference", Text, nullable=False),
    Column("sale_id", Text, nullable=False),
    PrimaryKeyConstraint("integration_id", "reference"),
)
