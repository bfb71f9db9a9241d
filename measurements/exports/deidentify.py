"""De-identified exports: one transform applied to every format, in Python (`Deidentifier.row`) and in
SQL for the COPY path (`Deidentifier.copy_sql`), giving the same bytes.

- Dates: every time of a participant moves by the same whole number of weeks (±1 to ±52, never 0), so
  the time of day, the weekday and the intervals between readings are kept. The offset is
  HMAC-SHA256(study key, participant code): the same in every export of the study, and nobody without
  the key (stored encrypted, `StudyExportKey`) can undo it. `measured_at_local` keeps the UTC offset
  the reading had: the wall-clock time and `measured_at` move together.
- Identifiers: Withings group ids and device ids become keyed hashes (HMAC-SHA256, 20 hex digits), so
  rows of one device or group still match each other across exports, but not the real ids.
- Free text: `device_model` (text as received from upstream) is dropped (empty).

Columns appended later must be given a rule here (`RULES`); a test fails for a column without one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from cohorts.models import Study
from measurements.models import StudyExportKey
from measurements.sessions import ID_FORMAT, session_id

from .columns import COLUMNS, Column
from .rows import Row, utc_text

if TYPE_CHECKING:
    from .home_averages import HomeAverage

SHIFTED, HASHED, DROPPED, KEPT = "shifted", "hashed", "dropped", "kept"
MAX_WEEKS = 52  # ±364 days
HASH_HEX_DIGITS = 20

#: What happens to each export column in a de-identified package.
RULES: dict[str, str] = {
    "study": KEPT,
    "site": KEPT,
    "participant": KEPT,  # already a pseudonymous study code
    "measured_at": SHIFTED,
    "measured_at_local": SHIFTED,
    "systolic_mmhg": KEPT,
    "diastolic_mmhg": KEPT,
    "pulse_bpm": KEPT,
    "irregular_heartbeat": KEPT,
    "source": KEPT,
    "device_model": DROPPED,
    "withings_grpid": HASHED,
    "attrib": KEPT,
    "flags": KEPT,
    "acc_aha_category": KEPT,
    "protocol_window": KEPT,  # from the local hour, which the shift keeps
    "session_id": SHIFTED,  # names the session's first instant: the shifted one
    "quality_flags": KEPT,
    "guideline_category": KEPT,
}
#: The package's other files: what moves in them (every other column is kept).
EXTRA_RULES: dict[str, dict[str, str]] = {
    "sessions.csv": {"session_id": SHIFTED, "started_at": SHIFTED, "ended_at": SHIFTED},
    "home_bp_averages.csv": {"period_start": SHIFTED, "period_end": SHIFTED},
}
NOTES = {
    SHIFTED: "De-identified: shifted by the participant's secret offset (a whole number of weeks, "
    "1 to 52, earlier or later; the same in every export of this study), so time of day, weekday and "
    "intervals are kept but not the real date.",
    HASHED: "De-identified: a keyed hash (HMAC-SHA256, 20 hex digits) of the real id; equal ids give "
    "equal hashes within this study.",
    DROPPED: "De-identified: free text, dropped (always empty).",
}


def study_secret(study: Study) -> bytes:
    """The study's key, created on first use (concurrent first uses agree on one)."""
    key = StudyExportKey.objects.filter(study=study).first()
    if key is None:
        try:
            with transaction.atomic():
                key = StudyExportKey.objects.create(study=study, secret=secrets.token_hex(32))
        except IntegrityError:
            key = StudyExportKey.objects.get(study=study)
    return bytes.fromhex(key.secret)


@dataclass(frozen=True)
class Deidentifier:
    secret: bytes

    @classmethod
    def for_study(cls, study: Study) -> Deidentifier:
        return cls(study_secret(study))

    def _mac(self, message: str) -> bytes:
        return hmac.new(self.secret, message.encode(), hashlib.sha256).digest()

    def offset_days(self, participant_code: str) -> int:
        n = int.from_bytes(self._mac(f"shift:{participant_code}")[:8], "big") % (2 * MAX_WEEKS)
        weeks = n - MAX_WEEKS if n < MAX_WEEKS else n - MAX_WEEKS + 1  # -52..-1, 1..52
        return weeks * 7

    def shift(self, participant_code: str) -> dt.timedelta:
        return dt.timedelta(days=self.offset_days(participant_code))

    def session_id(self, value: str | None) -> str | None:
        """A session id (`<code>-<first instant, UTC>`) naming the shifted instant."""
        if not value:
            return value
        code, stamp = value.rsplit("-", 1)
        start = dt.datetime.strptime(stamp, ID_FORMAT).replace(tzinfo=dt.UTC)
        return session_id(code, start + self.shift(code))

    def home_average(self, average: HomeAverage) -> HomeAverage:
        shift = self.shift(average.participant)
        return dataclasses.replace(
            average,
            period_start=average.period_start + shift if average.period_start else None,
            period_end=average.period_end + shift if average.period_end else None,
        )

    def hash_id(self, kind: str, value) -> str | None:
        if value is None or value == "":
            return None
        return self._mac(f"{kind}:{value}").hex()[:HASH_HEX_DIGITS]

    def row(self, row: Row) -> Row:
        values = list(row.values)
        shift = dt.timedelta(days=self.offset_days(values[NAMES.index("participant")]))
        # The offset the reading had, not the zone's offset on the shifted date: both times move alike.
        fixed = row.local.astimezone(dt.timezone(row.local.utcoffset() or dt.timedelta(0)))
        measured_at, local = row.measured_at + shift, fixed + shift
        values[NAMES.index("measured_at")] = utc_text(measured_at)
        values[NAMES.index("measured_at_local")] = local.isoformat(timespec="seconds")
        values[NAMES.index("withings_grpid")] = self.hash_id("grpid", values[NAMES.index("withings_grpid")])
        values[NAMES.index("session_id")] = self.session_id(values[NAMES.index("session_id")])
        for name, rule in RULES.items():
            if rule == DROPPED:
                values[NAMES.index(name)] = None
        return dataclasses.replace(
            row,
            values=tuple(values),
            device_id=self.hash_id("device", row.device_id) or "",
            measured_at=measured_at,
            local=local,
            deidentified=True,
            resource_key=self.hash_id("reading", row.pk) or "",
        )

    # --- the same in SQL, for copy_csv ---------------------------------------------------------------
    def _pads(self) -> tuple[bytes, bytes]:
        key = self.secret if len(self.secret) <= 64 else hashlib.sha256(self.secret).digest()
        key = key.ljust(64, b"\0")
        return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)

    def hash_sql(self, expr: str, kind: str) -> tuple[str, list]:
        """HMAC-SHA256 of '<kind>:<expr>' in SQL (PostgreSQL's sha256()), as `hash_id` computes it."""
        inner, outer = self._pads()
        sql = (
            f"left(encode(sha256(%s::bytea || sha256(%s::bytea || convert_to('{kind}:' || ({expr})::text, "
            f"'UTF8'))), 'hex'), {HASH_HEX_DIGITS})"
        )
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {sql} END", [outer, inner]

    def offsets(self, codes: list[str]) -> tuple[list[str], list[int]]:
        return codes, [self.offset_days(code) for code in codes]


NAMES = tuple(c.name for c in COLUMNS)


def deidentified_columns(
    columns: tuple[Column, ...] = COLUMNS, rules: dict[str, str] | None = None
) -> tuple[Column, ...]:
    """The data dictionary of a de-identified package: each transformed column says what was done.
    `rules`: another file's (`EXTRA_RULES`); a column it does not name is kept."""
    result = []
    for column in columns:
        rule = RULES[column.name] if rules is None else rules.get(column.name, KEPT)
        if rule == KEPT:
            result.append(column)
            continue
        changes: dict = {"meaning": f"{column.meaning}. {NOTES[rule]}"}
        if rule == HASHED:
            changes.update(
                type="text (keyed hash)", withings_source=f"keyed hash of {column.withings_source}"
            )
        if rule == DROPPED:
            changes.update(unknown="always empty (dropped)")
        result.append(dataclasses.replace(column, **changes))
    return tuple(result)


def deidentified_extra_columns() -> tuple[tuple[str, tuple[Column, ...]], ...]:
    from .package import EXTRA_DICTIONARY

    return tuple(
        (name, deidentified_columns(columns, EXTRA_RULES.get(name, {}))) for name, columns in EXTRA_DICTIONARY
    )


def manifest_entry() -> dict:
    """What the manifest says about a de-identified package."""
    return {
        "columns": {name: rule for name, rule in RULES.items() if rule != KEPT},
        "files": EXTRA_RULES,
        "fhir": {
            "device.identifier": HASHED,
            "identifier (withings-grpid)": HASHED,
            "id": HASHED,
            "effectiveDateTime": SHIFTED,
            "device.display": DROPPED,
        },
        "dates": "shifted: each participant's times move by one secret whole number of weeks (1 to 52, "
        "either way), the same in every export of the study; time of day and weekday are kept",
        "identifiers": "device ids and Withings group ids replaced by keyed hashes (HMAC-SHA256)",
        "free_text": "dropped",
    }
