"""Domain errors: each carries a stable snake_case code and a kind that the HTTP layer maps to a status."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ErrorKind(enum.Enum):
    """What went wrong, in words the HTTP layer turns into a status code."""

    INVALID = "invalid"  # 422
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    CONFLICT = "conflict"  # 409
    PRECONDITION_FAILED = "precondition_failed"  # 412
    PRECONDITION_REQUIRED = "precondition_required"  # 428
    UNAVAILABLE = "unavailable"  # 503


@dataclass(frozen=True)
class FieldError:
    """One offending part of a request, located by a JSON Pointer."""

    pointer: str
    detail: str


class DomainError(Exception):
    """Base of every error a context raises on purpose."""

    kind: ErrorKind = ErrorKind.INVALID
    code: str = "invalid_request"
    title: str = "Invalid request"
    retry_after: int | None = None  # seconds; set on errors a client should simply retry

    def __init__(self, detail: str, *, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors


class InvalidInput(DomainError):
    """The request is well-formed but breaks a domain rule."""

    kind = ErrorKind.INVALID
    code = "validation_failed"
    title = "Validation failed"


class Forbidden(DomainError):
    """The caller is who it says, but may not do this."""

    kind = ErrorKind.FORBIDDEN
    code = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    """No such object in the caller's organization."""

    kind = ErrorKind.NOT_FOUND
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    kind = ErrorKind.CONFLICT
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(DomainError):
    """The version the caller holds is no longer current."""

    kind = ErrorKind.PRECONDITION_FAILED
    code = "precondition_failed"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    """The operation needs a precondition (If-Match) that was not sent."""

    kind = ErrorKind.PRECONDITION_REQUIRED
    code = "precondition_required"
    title = "Precondition required"


class Busy(Conflict):
    """A lock could not be taken quickly; retrying shortly will most likely succeed."""

    code = "resource_busy"
    title = "Resource busy"
    retry_after = 1


class Unavailable(DomainError):
    """A dependency (the database) cannot be reached: nothing was done, and the same request may
    be sent again once it is back."""

    kind = ErrorKind.UNAVAILABLE
    code = "dependency_unavailable"
    title = "Dependency unavailable"
    retry_after = 5
