"""Members and the sponsor genealogy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from service.api.deps import Reader, SessionDep, Writer
from service.api.idempotency import IdempotencyKey, write_response
from service.api.pagination import decode_cursor, encode_cursor, refused, whole_number
from service.api.pagination import member_id as member_position
from service.api.problems import problem_responses
from service.api.routing import StrictJSONRoute
from service.api.schemas import (
    Cursor,
    ListPage,
    Member,
    MemberDetail,
    Move,
    Relative,
    page_response,
    relative_json,
)
from service.errors import IdempotencyConflict, InvalidCursor, MemberNotFound
from service.intake.requests import EnrollRequest, MemberId, MoveRequest, UpdateMemberRequest
from service.intake.writes import Enrol, MoveMember, UpdateMember
from service.services import members

router = APIRouter(prefix="/v1/members", tags=["members"], route_class=StrictJSONRoute)

MemberPath = Annotated[MemberId, Path(description="the member's id")]
UPLINE_LEVELS_BOUND = 10_000_000
"""No sponsor chain is longer; an upline cursor past it is not one this list gave out."""


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Member,
    responses={
        200: {"description": "The same enrolment was posted before", "model": Member},
        **problem_responses(*Enrol.refusals, IdempotencyConflict),
    },
)
async def enroll_member(
    body: EnrollRequest, session: SessionDep, caller: Writer, idempotency_key: IdempotencyKey = None
) -> Response:
    """Enroll a member under a sponsor (`sponsor_id: null` for a root)."""
    return await write_response(session, caller, Enrol(body), idempotency_key)


@router.get("/{member_id}", responses=problem_responses(MemberNotFound))
async def get_member(member_id: MemberPath, session: SessionDep, caller: Reader) -> MemberDetail:
    """The member, with the number of direct recruits and the size of the whole downline."""
    found = await members.get_with_team(session, caller.program_id, member_id)
    return MemberDetail(
        **Member.of(found.member).model_dump(),
        direct_recruits=found.direct_recruits,
        downline_size=found.downline_size,
        achieved_rank=found.achieved_rank,
    )


@router.patch(
    "/{member_id}",
    response_model=Member,
    responses=problem_responses(*UpdateMember.refusals, IdempotencyConflict),
)
async def update_member(
    member_id: MemberPath,
    body: UpdateMemberRequest,
    session: SessionDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Change `status` or `name` (`name: null` clears it). Termination is final."""
    return await write_response(session, caller, UpdateMember(member_id, body), idempotency_key)


@router.post(
    "/{member_id}/move",
    response_model=Member,
    responses=problem_responses(*MoveMember.refusals, IdempotencyConflict),
)
async def move_member(
    member_id: MemberPath,
    body: MoveRequest,
    session: SessionDep,
    caller: Writer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Move a member, with their whole team, under a new sponsor; kept in the move history."""
    return await write_response(session, caller, MoveMember(member_id, body), idempotency_key)


@router.get(
    "/{member_id}/upline",
    response_model=ListPage[Relative],
    responses=problem_responses(MemberNotFound, InvalidCursor),
)
async def get_upline(
    member_id: MemberPath,
    session: SessionDep,
    caller: Reader,
    levels: Annotated[int, Query(ge=1, le=1000, description="levels per page")] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Response:
    """The sponsor chain, nearest first (level 1 is the sponsor)."""
    key = caller.program.cursor_key
    after_level, after_member = 0, None
    if cursor is not None:
        level, after_member = _position(key, cursor, "upline", member_id, 2)
        after_level = whole_number(level, minimum=1, maximum=UPLINE_LEVELS_BOUND)
        after_member = member_position(after_member)
    page = await members.upline(
        session,
        caller.program_id,
        member_id,
        levels=levels,
        after_level=after_level,
        after_member=after_member,
    )
    next_cursor = None
    if page.has_more:
        last = page.items[-1]
        next_cursor = encode_cursor(key, "upline", member_id, last.level, last.member.member_id)
    return page_response([relative_json(r) for r in page.items], next_cursor)


@router.get(
    "/{member_id}/downline",
    response_model=ListPage[Relative],
    responses=problem_responses(MemberNotFound, InvalidCursor),
)
async def get_downline(
    member_id: MemberPath,
    session: SessionDep,
    caller: Reader,
    max_depth: Annotated[
        int | None, Query(ge=1, le=100_000, description="deepest level to include")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> Response:
    """Everyone below the member, depth-first: each member followed by their own team
    (recruits in the order they joined), with `level` the distance from the member. A
    cursor continues the list only with the `max_depth` it was given out with."""
    key = caller.program.cursor_key
    after_id: str | None = None
    if cursor is not None:
        depth, after_id = _position(key, cursor, "downline", member_id, 2)
        if type(depth) is not type(max_depth) or depth != max_depth:
            raise refused()
        after_id = member_position(after_id)
    page = await members.downline(
        session,
        caller.program_id,
        member_id,
        max_depth=max_depth,
        after_id=after_id,
        limit=limit,
    )
    next_cursor = None
    if page.has_more:
        last = page.items[-1].member.member_id
        next_cursor = encode_cursor(key, "downline", member_id, max_depth, last)
    return page_response([relative_json(r) for r in page.items], next_cursor)


@router.get("/{member_id}/moves", responses=problem_responses(MemberNotFound, InvalidCursor))
async def get_moves(
    member_id: MemberPath,
    session: SessionDep,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> ListPage[Move]:
    """The member's move history (append-only), oldest first."""
    key = caller.program.cursor_key
    after_move_id = 0
    if cursor is not None:
        (position,) = _position(key, cursor, "moves", member_id, 1)
        after_move_id = whole_number(position, minimum=1)
    page = await members.moves(
        session, caller.program_id, member_id, after_move_id=after_move_id, limit=limit
    )
    next_cursor = None
    if page.has_more:
        next_cursor = encode_cursor(key, "moves", member_id, page.items[-1].move_id)
    return ListPage[Move](items=[Move.of(r) for r in page.items], next_cursor=next_cursor)


def _position(key: bytes, cursor: str, kind: str, member_id: str, size: int) -> list[Any]:
    """A cursor is only valid for the list (and the member) that gave it out."""
    position = decode_cursor(key, cursor, kind, size + 1)
    if position[0] != member_id:
        raise refused()
    return position[1:]
