"""Standard Webhooks signatures: the program's signing secrets, and the check of a signed
delivery."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from service.db import intake as intake_sql
from service.db.intake import SecretRow
from service.errors import SecretNotFound

SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def new_secret() -> tuple[str, str]:
    """(id, secret): a Standard Webhooks secret, `whsec_` + base64 of 32 random bytes."""
    raw = secrets.token_bytes(32)
    return "whs_" + secrets.token_hex(6), "whsec_" + base64.b64encode(raw).decode()


async def create_secret(session: AsyncSession, program_id: str) -> SecretRow:
    secret_id, secret = new_secret()
    return await intake_sql.insert_secret(session, program_id, secret_id=secret_id, secret=secret)


async def revoke_secret(session: AsyncSession, program_id: str, secret_id: str) -> None:
    if not await intake_sql.revoke_secret(session, program_id, secret_id):
        raise SecretNotFound(f"program {program_id!r} has no active secret {secret_id!r}")


async def signature_is_valid(
    session: AsyncSession, program_id: str, body: bytes, headers: Mapping[str, str]
) -> bool:
    """True when the Standard Webhooks signature verifies with any of the program's active
    secrets (several are active while a secret rotates), within 5 minutes either way."""
    wanted = {name: headers[name] for name in SIGNATURE_HEADERS if name in headers}
    secrets_ = await intake_sql.active_secrets(session, program_id)
    return any(_verifies(row.secret, body, wanted) for row in secrets_)


def _verifies(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        Webhook(secret).verify(body, headers, json_parse=False)
    except Exception:  # a bad header, a stale timestamp, a wrong signature: all a "no"
        return False
    return True
