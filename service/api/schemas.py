"""Response bodies shared by the routers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from service.db.members import MemberRow, MoveRow, RelativeRow
from service.intake.answers import instant, member_json
from service.intake.requests import Status

Cursor = Annotated[
    str,
    StringConstraints(max_length=512),
    Field(
        description="the `next_cursor` of the previous page; any other is 422 `invalid_cursor`",
        json_schema_extra={"minLength": 1},
    ),
]

T = TypeVar("T")


class FieldError(BaseModel):
    loc: list[str] = Field(description="where: body, query, path or header, then the field")
    msg: str
    type: str = Field(description="what is wrong, as pydantic names it")


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is stable and meant for programs."""

    type: str = Field(description="https://commissions.dev/problems/ and the code")
    title: str = Field(description="what the code means, the same for every instance")
    status: int = Field(description="the HTTP status")
    code: str = Field(description="stable, for programs; each response lists its own")
    detail: str = Field(description="what was wrong with this request")
    errors: list[FieldError] | None = Field(
        default=None, description="validation_error: every field that was not valid"
    )
    field: str | None = Field(default=None, description="invalid_amount: the field refused")
    id: str | None = Field(default=None, description="a refused event: its id, when it had one")


class ListPage(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Member(BaseModel):
    id: str
    sponsor_id: str | None
    enrolled_at: datetime
    status: Status
    name: str | None
    rank: str | None = Field(description="the rank in force: paid-as in the latest close")
    referral_code: str | None = Field(
        description="the code this member hands out: it enrols recruits under them (`sponsor_code`)"
    )
    updated_at: datetime

    @classmethod
    def of(cls, row: MemberRow) -> Member:
        return cls.model_validate(member_json(row))


class MemberDetail(Member):
    direct_recruits: int = Field(description="members this member sponsors directly")
    downline_size: int = Field(description="everyone below this member, at any depth")
    achieved_rank: str | None = Field(description="the highest rank this member was ever paid as")


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
