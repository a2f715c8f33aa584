"""Enrolment, changes and moves of members, and walks of the sponsor tree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service.db import labels as labels_sql
from service.db import members as member_sql
from service.db import ranks as rank_sql
from service.db.members import MemberRow, MoveRow, RelativeRow
from service.domain.labels import split
from service.errors import (
    EnrolledBeforeSponsor,
    GenealogyCycle,
    InvalidCursor,
    MemberExists,
    MemberNotFound,
    MemberTerminated,
    ReferralCodeTaken,
    ServiceError,
    SponsorTerminated,
    UnknownSponsor,
)

# A downline walk with no max_depth still stops here: deeper than any real tree.
UNBOUNDED_DEPTH = 1_000_000


@dataclass(frozen=True, slots=True)
class Enrolment:
    member: MemberRow
    created: bool


@dataclass(frozen=True, slots=True)
class MemberWithTeam:
    member: MemberRow
    direct_recruits: int
    downline_size: int
    achieved_rank: str | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[RelativeRow]
    has_more: bool


@dataclass(frozen=True, slots=True)
class MovePage:
    items: list[MoveRow]
    has_more: bool


async def _require_member(
    session: AsyncSession, program_id: str, member_id: str, *, for_update: bool = False
) -> MemberRow:
    member = await member_sql.get_member(session, program_id, member_id, for_update=for_update)
    if member is None:
        raise MemberNotFound(f"member {member_id!r} does not exist")
    return member


async def _require_sponsor(session: AsyncSession, program_id: str, sponsor_id: str) -> MemberRow:
    sponsor = await member_sql.get_member(session, program_id, sponsor_id)
    if sponsor is None:
        raise UnknownSponsor(f"sponsor {sponsor_id!r} is not a member of this program")
    if sponsor.status == "terminated":
        raise SponsorTerminated(f"sponsor {sponsor_id!r} is terminated")
    return sponsor


def _enrolled_before_sponsor(
    member_id: str, enrolled_at: datetime, sponsor_id: str, sponsor_enrolled_at: datetime
) -> EnrolledBeforeSponsor | None:
    """A sponsor is enrolled no later than their recruits (the same instant is fine): an
    upline member never earns on a sale made before they joined through a recruit who
    joined before them."""
    if enrolled_at >= sponsor_enrolled_at:
        return None
    return EnrolledBeforeSponsor(
        f"member {member_id!r} would be enrolled at {enrolled_at.isoformat()}, before their"
        f" sponsor {sponsor_id!r} ({sponsor_enrolled_at.isoformat()})",
        enrolled_at=enrolled_at.isoformat(),
        sponsor_enrolled_at=sponsor_enrolled_at.isoformat(),
    )


@dataclass(frozen=True, slots=True)
class EnrollInput:
    member_id: str
    sponsor_id: str | None
    enrolled_at: datetime | None
    name: str | None
    referral_code: str | None = None
    sponsor_code: str | None = None
    """In place of `sponsor_id`: the sponsor is the member holding this referral code."""


async def enroll(
    session: AsyncSession,
    program_id: str,
    *,
    member_id: str,
    sponsor_id: str | None,
    enrolled_at: datetime | None,
    name: str | None,
    referral_code: str | None = None,
    sponsor_code: str | None = None,
) -> Enrolment:
    """Add one member (see `enroll_many`); refusals raise."""
    wanted = EnrollInput(member_id, sponsor_id, enrolled_at, name, referral_code, sponsor_code)
    (result,) = await enroll_many(session, program_id, [wanted])
    if isinstance(result, ServiceError):
        raise result
    return result


def _same_enrolment(member: MemberRow, item: EnrollInput) -> bool:
    return (
        member.enrolled_sponsor_id == item.sponsor_id
        and (item.enrolled_at is None or member.enrolled_at == item.enrolled_at)
        and (item.name is None or member.name == item.name)
        and (item.referral_code is None or member.referral_code == item.referral_code)
    )


async def enroll_many(
    session: AsyncSession, program_id: str, items: list[EnrollInput]
) -> list[Enrolment | ServiceError]:
    """Add members under their sponsors (or as roots), in order, in two round trips.

    A sponsor must exist (enrolled before, or earlier in the same list), not be terminated,
    and not be enrolled after the recruit (`enrolled_at` defaults to now). Re-posting an
    enrolment answers the member as it is (a retried webhook is not an error); a different
    enrolment under a taken id is a conflict.
    """
    if not items:
        return []
    await member_sql.lock_genealogy(session, program_id)  # labels are handed out in order
    codes = [c for i in items for c in (i.referral_code, i.sponsor_code) if c is not None]
    holders = await member_sql.members_by_referral_code(session, program_id, codes)
    wanted = {item.member_id for item in items} | {
        item.sponsor_id for item in items if item.sponsor_id is not None
    }
    known = await member_sql.get_members(session, program_id, sorted(wanted))
    known.update({holder.member_id: holder for holder in holders.values()})
    now = datetime.now(UTC)
    results: list[Enrolment | ServiceError | None] = [None] * len(items)
    batch: dict[str, EnrollInput] = {}
    claimed: dict[str, str] = {}  # referral codes (lower case) given earlier in this list
    to_insert: list[tuple[int, EnrollInput]] = []

    def holder_of(code: str) -> str | None:
        key = code.lower()
        if key in claimed:
            return claimed[key]
        return holders[key].member_id if key in holders else None

    for index, item in enumerate(items):
        existing = known.get(item.member_id)
        if item.sponsor_code is not None:
            by_code = holder_of(item.sponsor_code)
            if by_code is None and existing is not None:
                # A retry of an enrolment made by a code the sponsor has given up since:
                # the code cannot say otherwise, so the rest of the enrolment decides.
                by_code = existing.enrolled_sponsor_id
            if by_code is None:
                results[index] = UnknownSponsor(
                    f"no member of this program holds the referral code {item.sponsor_code!r}"
                )
                continue
            item = replace(item, sponsor_id=by_code, sponsor_code=None)
        if existing is not None:
            results[index] = (
                Enrolment(member=existing, created=False)
                if _same_enrolment(existing, item)
                else MemberExists(f"member {item.member_id!r} exists with a different enrolment")
            )
            continue
        if item.member_id in batch:
            results[index] = _repeated(batch[item.member_id], item)
            continue
        if item.referral_code is not None and holder_of(item.referral_code) is not None:
            results[index] = ReferralCodeTaken(
                f"referral code {item.referral_code!r} is held by member"
                f" {holder_of(item.referral_code)!r}"
            )
            continue
        sponsor = item.sponsor_id
        if sponsor is not None:
            if sponsor in batch:
                sponsor_enrolled_at = batch[sponsor].enrolled_at or now
            else:
                row = known.get(sponsor)
                if row is None:
                    results[index] = UnknownSponsor(
                        f"sponsor {sponsor!r} is not a member of this program"
                    )
                    continue
                if row.status == "terminated":
                    results[index] = SponsorTerminated(f"sponsor {sponsor!r} is terminated")
                    continue
                sponsor_enrolled_at = row.enrolled_at
            refusal = _enrolled_before_sponsor(
                item.member_id, item.enrolled_at or now, sponsor, sponsor_enrolled_at
            )
            if refusal is not None:
                results[index] = refusal
                continue
        batch[item.member_id] = item
        to_insert.append((index, item))
        if item.referral_code is not None:
            claimed[item.referral_code.lower()] = item.member_id
    inserted = await _insert_placed(session, program_id, [item for _, item in to_insert], now)
    for index, item in to_insert:
        row = inserted.get(item.member_id)
        if row is not None:
            results[index] = Enrolment(member=row, created=True)
            continue
        # Taken by a concurrent request meanwhile: the same enrolment, or a conflict.
        taken = await member_sql.get_member(session, program_id, item.member_id)
        assert taken is not None
        results[index] = (
            Enrolment(member=taken, created=False)
            if _same_enrolment(taken, item)
            else MemberExists(f"member {item.member_id!r} exists with a different enrolment")
        )
    for index, item in enumerate(items):
        result = results[index]
        if result is None:  # a repeat of a member enrolled earlier in this list
            first = inserted.get(item.member_id)
            assert first is not None
            results[index] = Enrolment(member=first, created=False)
    return [result for result in results if result is not None]


async def _insert_placed(
    session: AsyncSession, program_id: str, items: list[EnrollInput], now: datetime
) -> dict[str, MemberRow]:
    """Insert the members with their tree labels: each takes two free labels inside its
    sponsor, as its last recruit; where none are free, a window is relabelled first (the
    members placed so far are written before, so the relabelling sees them)."""
    placer = _Placer(session, program_id)
    await placer.prefetch(sorted({i.sponsor_id for i in items if i.sponsor_id is not None}))
    pending: list[member_sql.NewMember] = []
    inserted: dict[str, MemberRow] = {}

    async def flush() -> None:
        inserted.update(await member_sql.insert_members(session, program_id, pending))
        pending.clear()

    for item in items:
        lo, hi, depth = await placer.place(item.member_id, item.sponsor_id, flush)
        pending.append(
            member_sql.NewMember(
                member_id=item.member_id,
                sponsor_id=item.sponsor_id,
                enrolled_at=item.enrolled_at or now,
                name=item.name,
                referral_code=item.referral_code,
                lo=lo,
                hi=hi,
                depth=depth,
            )
        )
    await flush()
    return inserted


class _Placer:
    """Hands out labels for new members, remembering the slots it has seen."""

    def __init__(self, session: AsyncSession, program_id: str) -> None:
        self.session = session
        self.program_id = program_id
        self.slots: dict[str | None, labels_sql.Slot] = {}

    async def prefetch(self, sponsor_ids: list[str]) -> None:
        self.slots.update(await labels_sql.slots(self.session, self.program_id, sponsor_ids))

    async def slot(self, sponsor_id: str | None) -> labels_sql.Slot:
        if sponsor_id not in self.slots:
            if sponsor_id is None:
                self.slots[None] = await labels_sql.root_slot(self.session, self.program_id)
            else:
                await self.prefetch([sponsor_id])
        return self.slots[sponsor_id]

    async def place(
        self, member_id: str, sponsor_id: str | None, flush: Callable[[], Awaitable[None]]
    ) -> tuple[int, int, int]:
        parent = await self.slot(sponsor_id)
        labels = split(parent.last, parent.hi, parent.placed)
        if labels is None:
            await flush()
            gap_low, gap_high = await labels_sql.make_room(
                self.session, self.program_id, before=parent.hi, room=2
            )
            # The relabelling moved labels: read again those of the slots seen so far.
            seen = [key for key in self.slots if key is not None]
            self.slots.clear()
            await self.prefetch(seen)
            parent = await self.slot(sponsor_id)
            labels = split(gap_low, gap_high, parent.placed)
            assert labels is not None  # the gap holds at least `room` labels
        lo, hi = labels
        parent.last = hi
        parent.placed += 1
        self.slots[member_id] = labels_sql.Slot(
            lo=lo, hi=hi, depth=parent.depth + 1, last=lo, placed=0
        )
        return lo, hi, parent.depth + 1


def _repeated(first: EnrollInput, again: EnrollInput) -> Enrolment | ServiceError | None:
    """A member enrolled twice in one list: answered after the first is written."""
    same = first.sponsor_id == again.sponsor_id and (
        again.enrolled_at is None or first.enrolled_at in (None, again.enrolled_at)
    )
    if (
        same
        and (again.name is None or again.name == first.name)
        and (again.referral_code is None or again.referral_code == first.referral_code)
    ):
        return None
    return MemberExists(f"member {again.member_id!r} exists with a different enrolment")


async def get_with_team(session: AsyncSession, program_id: str, member_id: str) -> MemberWithTeam:
    member = await _require_member(session, program_id, member_id)
    direct, size = await member_sql.team_counts(session, program_id, member_id)
    held = await rank_sql.member_ranks(session, program_id, member_id)
    return MemberWithTeam(
        member=member,
        direct_recruits=direct,
        downline_size=size,
        achieved_rank=None if held is None else held[1],
    )


_UNSET = object()


async def update(
    session: AsyncSession,
    program_id: str,
    member_id: str,
    *,
    status: str | None = None,
    name: str | object | None = _UNSET,
    referral_code: str | object | None = _UNSET,
) -> MemberRow:
    """Change status, name or referral code. Termination is final: a terminated member stays
    terminated. A referral code another member of the program holds (whatever its case) is
    refused; codes are given out under the genealogy lock, as enrolments give them."""
    if referral_code is not _UNSET:
        await member_sql.lock_genealogy(session, program_id)
    member = await _require_member(session, program_id, member_id, for_update=True)
    changes: dict[str, object] = {}
    if status is not None and status != member.status:
        if member.status == "terminated":
            raise MemberTerminated(f"member {member_id!r} is terminated; termination is final")
        changes["status"] = status
    if name is not _UNSET and name != member.name:
        changes["name"] = name
    if referral_code is not _UNSET and referral_code != member.referral_code:
        if isinstance(referral_code, str):
            held = await member_sql.members_by_referral_code(session, program_id, [referral_code])
            holder = held.get(referral_code.lower())
            if holder is not None and holder.member_id != member_id:
                raise ReferralCodeTaken(
                    f"referral code {referral_code!r} is held by member {holder.member_id!r}"
                )
        changes["referral_code"] = referral_code
    if not changes:
        return member
    return await member_sql.update_member(session, program_id, member_id, changes)


async def move(
    session: AsyncSession, program_id: str, member_id: str, *, sponsor_id: str | None
) -> MemberRow:
    """Put a member (and the whole team below them) under a new sponsor.

    A member can never become their own ancestor, nor go under a sponsor enrolled after
    them (so every sponsor in the tree is enrolled no later than their recruits); the old
    and new sponsor are kept in the append-only move history. Moving to the current sponsor
    changes nothing.
    """
    await member_sql.lock_genealogy(session, program_id)
    member = await _require_member(session, program_id, member_id, for_update=True)
    if sponsor_id == member.sponsor_id:
        return member
    if sponsor_id is not None:
        sponsor = await _require_sponsor(session, program_id, sponsor_id)
        if await member_sql.is_in_upline_or_self(
            session, program_id, member_id=member_id, candidate=sponsor_id
        ):
            raise GenealogyCycle(
                f"{sponsor_id!r} is {member_id!r} or in its downline: the move would make"
                f" {member_id!r} its own ancestor"
            )
        refusal = _enrolled_before_sponsor(
            member_id, member.enrolled_at, sponsor_id, sponsor.enrolled_at
        )
        if refusal is not None:
            raise refusal
    moved = await member_sql.set_sponsor(session, program_id, member_id, sponsor_id)
    await labels_sql.relocate_subtree(session, program_id, member_id, sponsor_id)
    await member_sql.record_move(
        session,
        program_id=program_id,
        member_id=member_id,
        from_sponsor_id=member.sponsor_id,
        to_sponsor_id=sponsor_id,
    )
    return moved


_NOT_GIVEN_OUT = "the cursor is not one this list gave out"


async def upline(
    session: AsyncSession,
    program_id: str,
    member_id: str,
    *,
    levels: int,
    after_level: int,
    after_member: str | None,
) -> Page:
    """The sponsor chain, nearest first; `after_level` skips the levels already shown, the
    last of which `after_member` held (a chain changed since by a move is refused)."""
    rows = await member_sql.upline_of(
        session, program_id, member_id, levels=after_level + levels + 1
    )
    if not rows:  # a root, or no such member: only then is it worth asking which
        await _require_member(session, program_id, member_id)
    if after_level and (
        len(rows) < after_level or rows[after_level - 1].member.member_id != after_member
    ):
        raise InvalidCursor(_NOT_GIVEN_OUT)
    window = rows[after_level:]
    return Page(items=window[:levels], has_more=len(window) > levels)


async def downline(
    session: AsyncSession,
    program_id: str,
    member_id: str,
    *,
    max_depth: int | None,
    after_id: str | None,
    limit: int,
) -> Page:
    """The team below a member, depth-first: each member followed by their own team,
    recruits in the order they were placed under their sponsor. `after_id` must be in that
    team, within `max_depth` (a member moved out of it since is refused)."""
    depth = max_depth or UNBOUNDED_DEPTH
    if after_id is not None and not await member_sql.is_in_downline(
        session, program_id, root=member_id, member_id=after_id, max_depth=depth
    ):
        await _require_member(session, program_id, member_id)
        raise InvalidCursor(_NOT_GIVEN_OUT)
    rows = await member_sql.downline_page(
        session,
        program_id,
        member_id,
        max_depth=depth,
        after_id=after_id,
        limit=limit + 1,
    )
    if not rows:  # a leaf, the end of the team, or no such member
        await _require_member(session, program_id, member_id)
    return Page(items=rows[:limit], has_more=len(rows) > limit)


async def moves(
    session: AsyncSession, program_id: str, member_id: str, *, after_move_id: int, limit: int
) -> MovePage:
    """The member's move history, oldest first; `after_move_id` must be one of its moves."""
    await _require_member(session, program_id, member_id)
    if after_move_id and not await member_sql.is_move_of(
        session, program_id, member_id=member_id, move_id=after_move_id
    ):
        raise InvalidCursor(_NOT_GIVEN_OUT)
    rows = await member_sql.moves_of(
        session, program_id, member_id, after_move_id=after_move_id, limit=limit + 1
    )
    return MovePage(items=rows[:limit], has_more=len(rows) > limit)
