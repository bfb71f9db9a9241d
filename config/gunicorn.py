"""gunicorn settings: `gunicorn -c python:config.gunicorn config.wsgi:application` (docker/Dockerfile).

The access log goes to stdout with every bearer secret of a request line, referrer or header
replaced by `[redacted]` (config.redaction); gunicorn's error log is filtered the same way.

With LOG_FORMAT=json (production's default, as in config/settings/production.py) both are one JSON
object per line like the application's own records (config.logs.JsonFormatter): an access line holds
the method, the redacted path and query, status, bytes, duration and the request id the application
gave the response (X-Request-ID), so it joins the application's lines of the same request.
"""

from __future__ import annotations

import logging
import os

from gunicorn.glogging import Logger

from config.logs import JsonFormatter
from config.redaction import RedactSecrets, redact

accesslog = "-"
logger_class = "config.gunicorn.RedactingLogger"


def log_format() -> str:
    production = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production")
    return os.environ.get("LOG_FORMAT") or ("json" if production else "text")


class AccessJsonFormatter(JsonFormatter):
    """gunicorn's access record (its args are the request's atoms) as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        atoms = record.args
        if not isinstance(atoms, dict):  # a filter already rendered the message
            return super().format(record)
        query = atoms["q"]
        fields = {
            "method": atoms["m"],
            # Redacted whole: a query's `code=` is only recognisable after the `?`.
            "path": redact(atoms["U"] + (f"?{query}" if query and query != "-" else "")),
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"] if atoms["B"] != "-" else None,
            "duration_ms": atoms["M"],
            "remote_addr": atoms["h"],
        }
        request_id = atoms["{x-request-id}o"]
        record.msg, record.args = f"{fields['method']} {fields['path']} {fields['status']}", ()
        if request_id and request_id != "-":
            record.request_id = request_id
        line = super().format(record)
        return line[:-1] + ", " + JsonFormatter.dumps(fields)[1:]


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactSecrets) for f in log.filters):
                log.addFilter(RedactSecrets())
        if log_format() == "json":
            for handler in self.error_log.handlers:
                handler.setFormatter(JsonFormatter())
            for handler in self.access_log.handlers:
                handler.setFormatter(AccessJsonFormatter())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
