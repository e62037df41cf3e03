"""Twilio-shaped HTTP errors: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("tac_sandbox")

# HTTP status -> Twilio's generic error code for it
_DEFAULT_CODES = {400: 20001, 401: 20003, 403: 20403, 404: 20404, 405: 20004, 409: 20409}
_DEFAULT_CODES.update({412: 20412, 422: 20001, 429: 20429, 500: 20500, 503: 20503})


class TwilioError(Exception):
    """Raise from a product route to answer with Twilio's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code if code is not None else _DEFAULT_CODES.get(status, status * 100)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.code)


def error_body(status: int, message: str, code: int | None = None) -> dict[str, Any]:
    code = code if code is not None else _DEFAULT_CODES.get(status, status * 100)
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def not_found(kind: str, identifier: str) -> TwilioError:
    return TwilioError(404, f"The requested resource {kind} {identifier} was not found")


def bad_request(message: str, code: int | None = None) -> TwilioError:
    return TwilioError(400, message, code=code)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with Twilio's JSON shape (never FastAPI's ``detail``)."""

    @app.exception_handler(TwilioError)
    async def _twilio_error(_: Request, exc: TwilioError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            location = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            problems.append(f"{location or 'request'}: {err.get('msg', 'invalid')}")
        message = "Invalid request: " + "; ".join(problems)
        return JSONResponse(error_body(400, message), status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("sandbox error", exc_info=exc)
        message = f"Internal error in the sandbox: {type(exc).__name__}"
        return JSONResponse(error_body(500, message), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        headers = dict(exc.headers) if exc.headers else None
        return JSONResponse(
            error_body(exc.status_code, message), status_code=exc.status_code, headers=headers
        )
