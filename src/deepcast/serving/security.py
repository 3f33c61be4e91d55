"""API keys for writes and a limit on request bodies.

Keys come from a file (one per line; `#` comments) or the `DEEPCAST_API_KEY` environment
variable, and are compared in constant time (`hmac.compare_digest`) against the `X-API-Key`
header. With no key configured, writes are refused: an open write endpoint is never the
default.
"""

from __future__ import annotations

import hmac
import json
import os
from pathlib import Path

from fastapi import Request
from fastapi.security import APIKeyHeader

from deepcast.errors import ConfigError

HEADER = "X-API-Key"
ENV = "DEEPCAST_API_KEY"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_MODEL_BYTES = 64 * 1024 * 1024  # a saved model uploaded to POST .../versions


def read_keys(key_file: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The accepted keys: those in `key_file`, else `$DEEPCAST_API_KEY` (comma-separated)."""
    if key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            raise ConfigError(f"--api-key-file {path}: file not found")
        lines = path.read_text(encoding="utf-8").splitlines()
        keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not keys:
            raise ConfigError(f"--api-key-file {path}: holds no key")
    else:
        keys = [k.strip() for k in os.environ.get(ENV, "").split(",") if k.strip()]
    short = [k for k in keys if len(k) < 16]
    if short:
        raise ConfigError("API keys must be at least 16 characters long")
    return tuple(keys)


class Unauthorized(Exception):
    """A write without a valid key (the service answers 401)."""


api_key_header = APIKeyHeader(name=HEADER, auto_error=False, description="needed for writes")


def key_is_valid(given: str | None, keys: tuple[str, ...]) -> bool:
    if not given:
        return False
    given_bytes = given.encode()
    # Every key is compared, so the time taken does not tell which key came close.
    matches = [hmac.compare_digest(given_bytes, key.encode()) for key in keys]
    return any(matches)


def require_key(request: Request, given: str | None) -> None:
    keys = request.app.state.api_keys
    if not keys:
        raise Unauthorized(
            f"writes are disabled: the server has no API key (--api-key-file or {ENV})"
        )
    if not key_is_valid(given, keys):
        raise Unauthorized(f"missing or invalid API key in the {HEADER} header")


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 before it is read whole
    (`model_limit` for a model upload, `POST /v1/models/{name}/versions`)."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES, model_limit: int = MAX_MODEL_BYTES):
        self.app = app
        self.limit = limit
        self.model_limit = model_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = scope.get("method") == "POST" and scope.get("path", "").endswith("/versions")
        limit = self.model_limit if upload else self.limit
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return await self._too_large(send, limit)
        received, refused = 0, False

        async def limited():
            # Over the limit: answer 413 here and tell the app the client left; whatever it
            # answers to that is dropped (a body read as far as the limit, never further).
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    await self._too_large(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message):
            if not refused:
                await send(message)

        await self.app(scope, limited, guarded)

    async def _too_large(self, send, limit: int) -> None:
        body = json.dumps({"detail": f"request body over {limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
