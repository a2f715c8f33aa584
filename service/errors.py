"""Errors that carry their own HTTP status and stable problem `code` (RFC 9457)."""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """A refusal the client can act on; rendered as application/problem+json."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://commissions.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    title = "Missing or invalid credentials"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    status = 403
    code = "insufficient_scope"
    title = "The API key lacks the scope this call needs"


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    title = "Not found"


class MemberNotFound(NotFound):
    code = "member_not_found"
    title = "Member not found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    title = "Conflict"


class MemberExists(Conflict):
    code = "member_exists"
    title = "A different member with this id exists"


class GenealogyCycle(Conflict):
    code = "genealogy_cycle"
    title = "The move would make a member their own ancestor"


class MemberTerminated(Conflict):
    code = "member_terminated"
    title = "The member is terminated"


class Unprocessable(ServiceError):
    status = 422
    code = "unprocessable"
    title = "The request cannot be applied"


class ValidationFailed(Unprocessable):
    code = "validation_error"
    title = "The request is not valid"


class UnknownSponsor(Unprocessable):
    code = "unknown_sponsor"
    title = "The sponsor is not a member of this program"


class SponsorTerminated(Unprocessable):
    code = "sponsor_terminated"
    title = "A terminated member cannot sponsor"


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"
    title = "The cursor is not one this list gave out"


class MalformedRequest(ServiceError):
    status = 400
    code = "malformed_json"
    title = "The body is not valid JSON"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class ProgramExists(Conflict):
    code = "program_exists"
    title = "A program with this id exists"


class ProgramNotFound(NotFound):
    code = "program_not_found"
    title = "Program not found"
