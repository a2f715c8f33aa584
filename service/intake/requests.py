"""The bodies of the write requests, shared by the REST calls and the webhook events (an
event's `data` is the body of the matching REST call)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

MemberId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$"),
    Field(description="Chosen by the client: 1-64 characters of A-Za-z0-9._:-", examples=["M7"]),
]
ObjectId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$"),
    Field(description="chosen by the client: 1-64 characters of A-Za-z0-9._:-", examples=["S1"]),
]
MemberName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Status = Literal["active", "inactive", "terminated"]
MONEY_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
"""The text of an amount (service.domain.money reads it, and refuses anything else with
`invalid_amount`, so the pattern is documented rather than checked twice)."""
MoneyText = Annotated[
    str,
    StringConstraints(max_length=64),
    Field(
        description='money in major units as a string, e.g. "19.99": at most 15 integer digits'
        " and no more decimals than the currency has (refused with 422 `invalid_amount`)",
        examples=["100.00"],
        json_schema_extra={"pattern": MONEY_PATTERN},
    ),
]
Category = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$"),
    Field(description="the plan's rate category", examples=["product", "enrollment_fee"]),
]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 1, tzinfo=UTC)


_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: Any) -> Any:
    """An instant travels as RFC 3339 text with its offset, as the document says (`format:
    date-time`): not a number of seconds, nor text pydantic would also read."""
    if isinstance(value, str) and _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time such as 2026-11-05T10:00:00Z")
    if not isinstance(value, str | datetime):
        raise ValueError("must be an RFC 3339 date-time string such as 2026-11-05T10:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""An RFC 3339 date-time with its offset."""


def _within_calendar(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be from 1970-01-01T00:00:00Z to before 9999-12-01T00:00:00Z")
    return value


INSTANT_YEAR_PATTERN = "^(19(69|[7-9][0-9])|[2-9][0-9]{3})-"
"""The year an instant is written with: 1969 (an offset behind UTC may put 1970's first
instants there) to 9999."""
Instant = Annotated[
    Timestamp,
    AfterValidator(_within_calendar),
    Field(
        description="an RFC 3339 date-time with its offset, from 1970-01-01T00:00:00Z to"
        " before 9999-12-01T00:00:00Z (the calendar the periods cover)",
        json_schema_extra={"pattern": INSTANT_YEAR_PATTERN},
    ),
]
"""An instant with its timezone, inside the calendar the periods cover."""


def _storable(value: Any) -> None:
    """Refuses text PostgreSQL cannot store: a NUL character, or a lone surrogate (which
    UTF-8 cannot encode), anywhere in a value, dictionary keys included."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain a NUL character")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("must be Unicode text (it holds a lone surrogate)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable(key)
            _storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _storable(item)


class Request(BaseModel):
    """A request body: a field it does not define is refused, and so is text that could not
    be stored as given."""

    model_config = ConfigDict(extra="forbid")

    added_later: ClassVar[frozenset[str]] = frozenset()
    """Optional fields added after bodies were first remembered by Idempotency-Key: left out
    of the fingerprint while null, so a retry across the upgrade still matches its key."""

    def fingerprinted(self) -> dict[str, Any]:
        """The body as its Idempotency-Key remembers it."""
        dumped = self.model_dump(mode="json")
        for name in self.added_later:
            if dumped.get(name) is None:
                dumped.pop(name, None)
        return dumped

    @field_validator("*", mode="after")
    @classmethod
    def _text_is_storable(cls, value: Any) -> Any:
        _storable(value)
        return value


ReferralCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"),
    Field(
        description="1-64 characters of A-Za-z0-9._- (starting with a letter or digit); unique"
        " in the program whatever its case, and matched without it",
        examples=["ANNA10"],
    ),
]


class EnrollRequest(Request):
    """The sponsor is given as exactly one of `sponsor_id` (null for a root) and
    `sponsor_code`."""

    added_later: ClassVar[frozenset[str]] = frozenset({"referral_code", "sponsor_code"})
    id: MemberId
    sponsor_id: MemberId | None = Field(
        default=None,
        description="null for a root of the genealogy; give it, or `sponsor_code`",
    )
    sponsor_code: ReferralCode | None = Field(
        default=None,
        description="in place of `sponsor_id`: the sponsor is the member holding this"
        " referral code (any case)",
    )
    enrolled_at: Instant | None = Field(default=None, description="defaults to now")
    name: MemberName | None = None
    referral_code: ReferralCode | None = None

    @model_validator(mode="after")
    def _one_sponsor(self) -> EnrollRequest:
        given = self.model_fields_set
        if ("sponsor_id" in given) == ("sponsor_code" in given and self.sponsor_code is not None):
            raise ValueError(
                "give the sponsor as exactly one of `sponsor_id` (null for a root) and"
                " `sponsor_code`"
            )
        return self


class UpdateMemberRequest(Request):
    added_later: ClassVar[frozenset[str]] = frozenset({"referral_code"})
    status: Status | None = None
    name: MemberName | None = None
    referral_code: ReferralCode | None = Field(default=None, description="null clears it")


class MoveRequest(Request):
    sponsor_id: MemberId | None = Field(description="the new sponsor; null makes a root")


class SaleRequest(Request):
    id: ObjectId = Field(description="the order id")
    member_id: MemberId = Field(description="who is credited with the sale")
    amount: MoneyText
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    volume: MoneyText | None = Field(
        default=None, description="commissionable volume; default: amount"
    )
    category: Category = "product"
    subscription_id: ObjectId | None = Field(
        default=None, description="set for a recurring sale: counted as residual volume"
    )
    customer: Literal["retail", "member"] = "retail"
    occurred_at: Instant


class RefundRequest(Request):
    id: ObjectId
    amount: MoneyText = Field(description="partial allowed; never more than what is left")
    occurred_at: Instant
