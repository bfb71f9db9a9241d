"""gunicorn settings: `gunicorn -c python:config.gunicorn config.wsgi:application` (docker/Dockerfile).

The access log goes to stdout with every bearer secret of a request line, referrer or header
replaced by `[redacted]` (config.redaction); gunicorn's error log is filtered the same way.
"""

from __future__ import annotations

from gunicorn.glogging import Logger

from config.redaction import RedactSecrets, redact

accesslog = "-"
logger_class = "config.gunicorn.RedactingLogger"


class RedactingLogger(Logger):
    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactSecrets) for f in log.filters):
                log.addFilter(RedactSecrets())

    def atoms(self, resp, req, environ, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}
