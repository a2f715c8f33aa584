"""Request and response bodies shared by the routers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, Literal, TypeVar

from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from service.db.members import MemberRow, MoveRow, RelativeRow

MemberId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9._:-]{1,64}$"),
    Field(description="Chosen by the client: 1-64 characters of A-Za-z0-9._:-", examples=["M7"]),
]
MemberName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Status = Literal["active", "inactive", "terminated"]

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 1, tzinfo=UTC)


def _within_calendar(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be from 1970-01-01 to 9999-11-30")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_within_calendar)]
"""An instant with its timezone, inside the calendar the periods cover."""
Cursor = Annotated[str, StringConstraints(max_length=512)]

T = TypeVar("T")


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable and meant for programs."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    errors: list[dict[str, object]] | None = None


class ListPage(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class EnrollRequest(Request):
    id: MemberId
    sponsor_id: MemberId | None = Field(description="null for a root of the genealogy")
    enrolled_at: Instant | None = Field(default=None, description="defaults to now")
    name: MemberName | None = None


class UpdateMemberRequest(Request):
    status: Status | None = None
    name: MemberName | None = None


class MoveRequest(Request):
    sponsor_id: MemberId | None = Field(description="the new sponsor; null makes a root")


class Member(BaseModel):
    id: str
    sponsor_id: str | None
    enrolled_at: datetime
    status: Status
    name: str | None
    rank: str | None
    updated_at: datetime

    @classmethod
    def of(cls, row: MemberRow) -> Member:
        return cls.model_validate(member_json(row))


def instant(value: datetime) -> str:
    """An instant as the API prints it: ISO 8601 in UTC with a Z (as pydantic does)."""
    return value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def member_json(row: MemberRow) -> dict[str, object]:
    """A member as the API prints it (the fast path of `Member`)."""
    return {
        "id": row.member_id,
        "sponsor_id": row.sponsor_id,
        "enrolled_at": instant(row.enrolled_at),
        "status": row.status,
        "name": row.name,
        "rank": row.rank,
        "updated_at": instant(row.updated_at),
    }


class MemberDetail(Member):
    direct_recruits: int = Field(description="members this member sponsors directly")
    downline_size: int = Field(description="everyone below this member, at any depth")


class Relative(BaseModel):
    """A member in an upline or downline; `level` is the distance from the member asked."""

    id: str
    level: int
    sponsor_id: str | None
    status: Status
    name: str | None
    rank: str | None
    enrolled_at: datetime


def relative_json(row: RelativeRow) -> dict[str, object]:
    """An upline or downline member as the API prints it (the fast path of `Relative`)."""
    m = row.member
    return {
        "id": m.member_id,
        "level": row.level,
        "sponsor_id": m.sponsor_id,
        "status": m.status,
        "name": m.name,
        "rank": m.rank,
        "enrolled_at": instant(m.enrolled_at),
    }


def page_response(items: list[dict[str, object]], next_cursor: str | None) -> JSONResponse:
    """A list page, answered as built (long pages skip re-validation by a response model)."""
    return JSONResponse({"items": items, "next_cursor": next_cursor})


class Move(BaseModel):
    """One entry of the append-only move history."""

    from_sponsor_id: str | None
    to_sponsor_id: str | None
    moved_at: datetime

    @classmethod
    def of(cls, row: MoveRow) -> Move:
        return cls(
            from_sponsor_id=row.from_sponsor_id,
            to_sponsor_id=row.to_sponsor_id,
            moved_at=row.moved_at,
        )
