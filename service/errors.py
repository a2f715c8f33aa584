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
        return problem_body(self.status, self.code, self.title, self.detail, **self.extra)


def problem_body(status: int, code: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The one place an RFC 9457 problem body is built. Its text is made safe to send: a
    lone surrogate (which UTF-8 cannot carry) that came in with a request becomes '?'."""
    body: dict[str, Any] = {
        "type": f"https://commissions.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail.encode("utf-8", "replace").decode("utf-8"),
    }
    body.update(extra)
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


class ReferralCodeTaken(Conflict):
    code = "referral_code_taken"
    title = "Another member of this program holds this referral code"


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


class EnrolledBeforeSponsor(Unprocessable):
    code = "enrolled_before_sponsor"
    title = "A member cannot be enrolled before their sponsor"


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


class InvalidPlan(Unprocessable):
    code = "invalid_plan"
    title = "The plan is not valid"


class NoPlanInForce(Unprocessable):
    code = "no_plan_in_force"
    title = "No plan version is in force at that time"


class PlanVersionNotFound(NotFound):
    code = "plan_not_found"
    title = "No such plan version"


class UnknownMember(Unprocessable):
    code = "unknown_member"
    title = "The member is not known in this program"


class CurrencyMismatch(Unprocessable):
    code = "currency_mismatch"
    title = "The currency is not the program's"


class InvalidAmount(Unprocessable):
    code = "invalid_amount"
    title = "The amount is not valid money in the program's currency"


class SaleConflict(Conflict):
    code = "sale_conflict"
    title = "A different sale with this id exists"


class SaleNotFound(NotFound):
    code = "sale_not_found"
    title = "Sale not found"


class RefundConflict(Conflict):
    code = "refund_conflict"
    title = "A different refund with this id exists"


class RefundExceedsSale(Unprocessable):
    code = "refund_exceeds_sale"
    title = "The refund is more than what is left of the sale"


class RefundBeforeSale(Unprocessable):
    code = "refund_before_sale"
    title = "The refund occurred before its sale"


class InvalidPeriod(Unprocessable):
    code = "invalid_period"
    title = "The period is not a YYYY-MM month"


class EventConflict(Conflict):
    code = "event_conflict"
    title = "An event with this id was applied with a different body"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "This Idempotency-Key was used for a different request"


class UnknownSale(Unprocessable):
    code = "unknown_sale"
    title = "The sale is not known in this program"


class BatchTooLarge(ServiceError):
    status = 413
    code = "batch_too_large"
    title = "Too many events in one batch"


class SecretNotFound(NotFound):
    code = "secret_not_found"
    title = "No such active webhook secret"


class IntegrationNotFound(NotFound):
    code = "integration_not_found"
    title = "No such active store integration"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    title = "The integration has no such delivery"


class InvalidStoreSignature(ServiceError):
    status = 401
    code = "invalid_signature"
    title = "The platform's signature is missing or does not verify"


class InvalidIntegration(ServiceError):
    status = 422
    code = "invalid_integration"
    title = "The integration cannot be created as given"


class DuplicateKey(Unprocessable):
    code = "duplicate_key"
    title = "A JSON object holds the same key twice"


class DatabaseUnavailable(ServiceError):
    """The database could not be reached, or the connection was lost mid-request: the
    request's transaction is gone (PostgreSQL rolls back what was not committed)."""

    status = 503
    code = "database_unavailable"
    title = "The database is unavailable"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "2"}

    def __init__(
        self,
        detail: str = "the database cannot be reached right now; send the request again",
        **extra: Any,
    ) -> None:
        super().__init__(detail, **extra)


class MethodNotAllowed(ServiceError):
    status = 405
    code = "method_not_allowed"
    title = "The path does not take this method"


class RetryLater(ServiceError):
    status = 503
    code = "retry_later"
    title = "Rolled back by a concurrent request"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


class PeriodNotEnded(Conflict):
    code = "period_not_ended"
    title = "The period has not ended yet"


class EarlierPeriodOpen(Conflict):
    code = "earlier_period_open"
    title = "An earlier period with booked activity is still open"


class PeriodSettled(Conflict):
    code = "period_settled"
    title = "The period is settled: a later period is closed already"
