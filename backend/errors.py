"""One JSON error shape for every refusal: {"error": {"code", "message"}}.

Flask errors go through `init_app`'s handlers; the errors waitress answers by itself (body over
the limit, headers too large, malformed framing) go through `JSONErrorChannel`, so the extension
sees the same shape whoever refused the request.
"""

import json
import logging
import re

from flask import jsonify
from waitress.channel import HTTPChannel
from waitress.task import ErrorTask
from werkzeug.exceptions import HTTPException

logger = logging.getLogger(__name__)

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class ApiError(Exception):
    """A refusal with an HTTP status, a snake_case code and a human message."""

    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def snake_case(text):
    """'Request Entity Too Large' -> 'request_entity_too_large'."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def error_response(status, code, message, headers=None):
    """The JSON error response every refusal uses."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def init_app(app):
    """Register the JSON error handlers on the app."""

    @app.errorhandler(ApiError)
    def handle_api_error(e):
        return error_response(e.status, e.code, e.message, e.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(e):
        allow = {k: v for k, v in e.get_headers() if k == "Allow"}
        return error_response(e.code, snake_case(e.name), e.description, allow)

    @app.errorhandler(Exception)
    def handle_unexpected(e):
        # Only our own bugs get here: bad input is refused with a 4xx before. No traceback
        # and no request data in the response.
        logger.exception("internal error while serving a request")
        return error_response(500, "internal_error", "internal server error")


class JSONErrorTask(ErrorTask):
    """waitress's own refusals (413, 431, 400 framing errors) in our JSON error shape."""

    def execute(self):
        e = self.request.error
        body = json.dumps({"error": {"code": snake_case(e.reason), "message": e.body}}).encode()
        self.status = f"{e.code} {e.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.response_headers.extend(SECURITY_HEADERS.items())
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class JSONErrorChannel(HTTPChannel):
    """A waitress channel whose protocol-level errors are JSON."""

    error_task_class = JSONErrorTask
