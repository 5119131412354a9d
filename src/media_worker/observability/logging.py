"""Structured logging: JSON lines in production, readable colour lines in a terminal.

structlog is configured once by the composition root; modules receive a bound logger instead of
reaching for a global one, so every line of a job carries its ids.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Credentials that can hide inside exception texts: URL userinfo and presigned-URL signatures.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@", re.I)
_SIGNATURE = re.compile(
    r"(?P<name>X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|password)"
    r"=[^&\s\"']+",
    re.I,
)

Logger = structlog.typing.FilteringBoundLogger


def redact(text: str) -> str:
    """Remove passwords in URLs and signature query parameters from a string."""
    text = _URL_PASSWORD.sub(r"\g<scheme>\g<user>:***@", text)
    return _SIGNATURE.sub(r"\g<name>=***", text)


def _redact_event(
    _logger: object, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in event.items():
        if isinstance(value, str):
            event[key] = redact(value)
    return event


def configure_logging(log_format: str = "console", level: str = "info") -> Logger:
    """Configure structlog process-wide and return the root logger of the worker."""
    renderer: structlog.typing.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    return structlog.get_logger("media_worker")


def short_error(exc: BaseException, limit: int = 300) -> str:
    """A one-line, credential-free description of an exception for rows and logs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
