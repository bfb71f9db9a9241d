"""Every call to REDCap, through PyCap, with a timeout, and its failures sorted into "REDCap refused"
(its own error text, not retried) and "try later" (network, timeouts, a server or proxy error page).

The token never reaches a message: PyCap's own checks print the token they refuse, so the format is
checked here first, and any text that might carry it is scrubbed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import redcap
import requests

TIMEOUT = (5, 60)  # connect, read (seconds)
TOKEN_FORMAT = re.compile(r"^[0-9A-Fa-f]{32}$")


class RedcapFailure(Exception):
    """A failed REDCap call. `transient`: worth trying again later."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "[token]") if token else text


def check_connection_settings(api_url: str, token: str) -> list[str]:
    problems = []
    if not api_url.endswith("/api/"):
        problems.append("The API URL must end in /api/ (e.g. https://redcap.example.org/api/).")
    if not TOKEN_FORMAT.match(token or ""):
        problems.append("A REDCap API token is 32 hexadecimal characters: check it was copied whole.")
    return problems


@dataclass
class RedcapClient:
    api_url: str
    token: str

    def _project(self) -> redcap.Project:
        if problems := check_connection_settings(self.api_url, self.token):
            raise RedcapFailure(" ".join(problems), transient=False)
        return redcap.Project(self.api_url, self.token, timeout=TIMEOUT)

    def _call(self, name: str, **kwargs):
        try:
            return getattr(self._project(), name)(**kwargs)
        except RedcapFailure:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RedcapFailure(
                f"REDCap could not be reached ({type(exc).__name__}).", transient=True
            ) from None
        except requests.JSONDecodeError:
            raise RedcapFailure(
                "REDCap answered with something other than JSON (a server error or maintenance page).",
                transient=True,
            ) from None
        except requests.RequestException as exc:
            # PyCap raises REDCap's JSON error body as the exception's argument.
            body = exc.args[0] if exc.args else ""
            message = body.get("error", str(body)) if isinstance(body, dict) else str(body)
            raise RedcapFailure(_scrub(f"REDCap refused: {message}", self.token), transient=False) from None

    def metadata(self) -> list[dict]:
        return self._call("export_metadata", format_type="json")

    def instruments(self) -> list[dict]:
        return self._call("export_instruments", format_type="json")

    def repeating(self) -> list[dict]:
        return self._call("export_repeating_instruments_events", format_type="json")

    def events(self) -> list[str] | None:
        """Unique event names, or None for a classic (non-longitudinal) project."""
        try:
            rows = self._call("export_events", format_type="json")
        except RedcapFailure as exc:
            if exc.transient:
                raise
            return None
        return [row["unique_event_name"] for row in rows]

    def import_rows(self, rows: list[dict]) -> int:
        """Import with overwriteBehavior=normal (a blank never erases). Returns REDCap's count."""
        answer = self._call("import_records", to_import=rows, overwrite="normal", return_content="count")
        return int(answer.get("count", 0)) if isinstance(answer, dict) else 0

    def export_rows(self, records: list[str] | None = None) -> list[dict]:
        return self._call("export_records", format_type="json", records=records)
