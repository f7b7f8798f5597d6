"""Stage: the request body's size limit, whatever its framing.

With `Content-Length`, Werkzeug refuses a body over `MAX_CONTENT_LENGTH` (413). A chunked body has
no length up front, and Werkzeug stops reading it at the limit without saying so: the view would
see the first 64 KiB of a larger body (and answer `malformed_json`). Here a chunked body is read
once, up to one byte past the limit: over it is 413 `payload_too_large`, before any view or
idempotency key sees the request; within it, the request continues with that body and its length.
"""

from __future__ import annotations

import io
from typing import Any

from flask import Response
from flask import request
from werkzeug.wsgi import get_content_length

from bookwell.platform.http.pipeline.exchange import Exchange
from bookwell.platform.http.pipeline.exchange import Proceed
from bookwell.platform.http.problems import HttpProblem


class BodyLimit:
    """Refuse any body over `max_bytes` with 413, chunked or not."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def __call__(self, exchange: Exchange, proceed: Proceed) -> Response:
        request.max_content_length = self.max_bytes  # a declared length: Werkzeug refuses it on read
        environ = request.environ
        if get_content_length(environ) is None and environ.get("wsgi.input_terminated"):
            self._bound_chunked_body(environ)
        return proceed(exchange)

    def _bound_chunked_body(self, environ: dict[str, Any]) -> None:
        max_bytes = self.max_bytes
        try:
            body = environ["wsgi.input"].read(max_bytes + 1)
        except Exception as error:
            raise HttpProblem(
                400, "malformed_request", "Malformed request", "The chunked body could not be read."
            ) from error
        if len(body) > max_bytes:
            # The rest of the body is never read: the connection cannot carry another request.
            raise HttpProblem(
                413,
                "payload_too_large",
                "Payload too large",
                f"The body is larger than {max_bytes} bytes.",
                headers={"Connection": "close"},
            )
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
