"""Errors to HTTP responses: user errors keep their message, a down model says when to retry."""

from __future__ import annotations

from litestar import Request, Response
from litestar.exceptions import HTTPException

from twin.domain import TooBusy, TwinError, Unavailable

RETRY_AFTER_S = 5


def twin_error_handler(_: Request, exc: TwinError) -> Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, Unavailable | TooBusy) else None
    body = {"status_code": exc.status_code, "detail": str(exc)}
    if isinstance(exc, Unavailable):
        body["retry_after_s"] = RETRY_AFTER_S
    return Response(body, status_code=exc.status_code, headers=headers)


def value_error_handler(_: Request, exc: ValueError) -> Response:
    if isinstance(exc, HTTPException):  # Litestar's own 404/400s are ValueErrors too: keep their status
        body = {"status_code": exc.status_code, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    return Response({"status_code": 400, "detail": str(exc)}, status_code=400)


def overflow_error_handler(_: Request, exc: OverflowError) -> Response:
    # An id past the database's 64-bit integers (``/api/drafts/99999999999999999999``) names nothing.
    return Response({"status_code": 400, "detail": f"A number in the request is out of range ({exc})."},
                    status_code=400)


EXCEPTION_HANDLERS = {TwinError: twin_error_handler, ValueError: value_error_handler,
                      OverflowError: overflow_error_handler}
