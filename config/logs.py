"""Log lines that say which request, user, study and task they belong to.

- ``RequestContextMiddleware`` gives every request an id (a sane ``X-Request-ID`` from the proxy, or
  a new one, echoed in the response) and records the signed-in user's id and the study of the URL.
- Celery's ``task_prerun``/``task_postrun`` (config.celery_app) record the task's id and name.
- ``ContextFilter`` copies them onto every record; ``JsonFormatter`` prints one JSON object per line
  (production, ``LOG_FORMAT=json``); the text format shows the request id only (development).

Only ids go in: the user's pk (never the e-mail), the study's slug. The message and the traceback
pass through ``config.redaction`` again, so a bearer path, token parameter, phone number or e-mail
address never reaches the line whatever the handler's filters."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from config.redaction import redact

FIELDS = ("request_id", "user_id", "study", "task_id", "task")
Context = dict[str, object]
_context: contextvars.ContextVar[Context | None] = contextvars.ContextVar("log_context", default=None)
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
STUDY_KWARGS = ("study_slug", "slug")


def bind(**values: object) -> contextvars.Token:
    """Add to the current context; returns the token that ``reset`` takes."""
    return _context.set({**(_context.get() or {}), **values})


def reset(token: contextvars.Token) -> None:
    _context.reset(token)


def current() -> Context:
    return dict(_context.get() or {})


def _user_id(request: object) -> int | None:
    """The signed-in user's pk if the request has already loaded its user: logging never costs a
    query (django.contrib.auth caches the user it loads in ``_cached_user``)."""
    user = getattr(request, "_cached_user", None)
    return user.pk if user is not None and user.is_authenticated else None


def _record_context(record: logging.LogRecord) -> Context:
    """The context of the record's request when it names one (Django logs a 4xx/5xx response after
    the middleware has returned), else the current one; with the user id resolved."""
    request_context = getattr(getattr(record, "request", None), "log_context", None)
    context = dict(request_context) if isinstance(request_context, dict) else current()
    request = context.pop("_request", None)
    if request is not None:
        context["user_id"] = _user_id(request)
    return context


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = _record_context(record)
        for field in FIELDS:
            if not hasattr(record, field):
                setattr(record, field, context.get(field))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the context ids, and
    the traceback when there is one — all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is None:
                value = _record_context(record).get(field)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = redact(record.exc_text or self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        return self.dumps(line)

    @staticmethod
    def dumps(line: dict[str, object]) -> str:
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Development: the plain format with the request or task id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        context = current()
        marker = context.get("request_id") or context.get("task_id")
        text = super().format(record)
        return f"{text} [{marker}]" if marker else text


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = bind(request_id=request_id, _request=request, study=None)
        request.log_context = current()  # type: ignore[attr-defined]
        try:
            response = self.get_response(request)
        finally:
            reset(token)
        response["X-Request-ID"] = request_id
        return response

    def process_view(self, request, view_func, view_args, view_kwargs) -> None:  # noqa: ARG002 — Django's hook
        study = next((view_kwargs[k] for k in STUDY_KWARGS if isinstance(view_kwargs.get(k), str)), None)
        if study is not None:
            bind(study=study)  # reset with the request's token above
            request.log_context = current()


def task_started(task_id: str | None = None, task=None, **_: object) -> None:
    bind(task_id=task_id, task=getattr(task, "name", None))


def task_finished(**_: object) -> None:
    bind(task_id=None, task=None)
