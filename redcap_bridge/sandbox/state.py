"""The fake REDCap's projects and the rules REDCap applies to an import.

Error texts follow REDCap's own wording (what its API answers with ``returnFormat=json``), so the
portal shows data managers what REDCap would have said.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

SPECIAL = (
    "redcap_event_name",
    "redcap_repeat_instrument",
    "redcap_repeat_instance",
    "redcap_data_access_group",
)
MAX_INSTANCE = 32767  # REDCap stores the instance as a SMALLINT
NO_PERMISSION = "You do not have permissions to use the API"
NOT_VALIDATED = (
    "The value you provided could not be validated because it does not follow the expected format. "
    "Please try again."
)


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def new_token() -> str:
    return secrets.token_hex(16).upper()


def field_row(
    name: str, form: str, *, ftype: str = "text", validation: str = "", label: str = "", choices: str = ""
):
    """One row of REDCap's metadata (data dictionary) export."""
    return {
        "field_name": name,
        "form_name": form,
        "section_header": "",
        "field_type": ftype,
        "field_label": label or name,
        "select_choices_or_calculations": choices,
        "field_note": "",
        "text_validation_type_or_show_slider_number": validation,
        "text_validation_min": "",
        "text_validation_max": "",
        "identifier": "",
        "branching_logic": "",
        "required_field": "",
        "custom_alignment": "",
        "question_number": "",
        "matrix_group_name": "",
        "matrix_ranking": "",
        "field_annotation": "",
    }


def demo_metadata() -> tuple[list[dict], list[tuple[str, str]], list[str]]:
    """A project like a study team would build: enrollment, a repeating BP reading instrument and a
    repeating weekly summary. Returns (metadata, instruments, repeating instrument names)."""
    meta = [
        field_row("record_id", "enrollment", label="Record ID"),
        field_row("enrol_site", "enrollment"),
        field_row("bp_datetime", "home_bp", validation="datetime_seconds_ymd"),
        field_row("bp_sys", "home_bp", validation="integer"),
        field_row("bp_dia", "home_bp", validation="integer"),
        field_row("bp_pulse", "home_bp", validation="integer"),
        field_row("bp_source", "home_bp"),
        field_row("bp_irregular", "home_bp", ftype="yesno"),
        field_row("wk_start", "bp_week", validation="date_ymd"),
        field_row("wk_end", "bp_week", validation="date_ymd"),
        field_row("wk_n", "bp_week", validation="integer"),
        field_row("wk_days", "bp_week", validation="integer"),
        field_row("wk_sys", "bp_week", validation="number"),
        field_row("wk_dia", "bp_week", validation="number"),
        field_row("wk_pulse", "bp_week", validation="number"),
    ]
    instruments = [("enrollment", "Enrollment"), ("home_bp", "Home BP"), ("bp_week", "BP week")]
    return meta, instruments, ["home_bp", "bp_week"]


_DATE = {
    "date_ymd": "%Y-%m-%d",
    "datetime_ymd": "%Y-%m-%d %H:%M",
    "datetime_seconds_ymd": "%Y-%m-%d %H:%M:%S",
}


def _valid(row: dict, value: str) -> bool:
    ftype, validation = row["field_type"], row["text_validation_type_or_show_slider_number"]
    if ftype == "yesno":
        return value in ("0", "1")
    if ftype == "truefalse":
        return value in ("0", "1")
    if ftype in ("radio", "dropdown"):
        codes = [c.split(",", 1)[0].strip() for c in row["select_choices_or_calculations"].split("|")]
        return value in codes
    if validation == "integer":
        return re.fullmatch(r"-?\d+", value) is not None
    if validation == "number":
        return re.fullmatch(r"-?\d+(\.\d+)?", value) is not None
    if validation in _DATE:
        try:
            dt.datetime.strptime(value, _DATE[validation])  # noqa: DTZ007 — REDCap dates have no zone
        except ValueError:
            return False
    return True


@dataclass
class FakeProject:
    token: str
    metadata: list[dict]
    instruments: list[tuple[str, str]]
    repeating: list[str]  # repeating instrument names (in every event, for a longitudinal project)
    events: list[str] = field(default_factory=list)  # unique event names; empty: a classic project
    # (record, event, repeat instrument, instance) -> {field: value}
    data: dict[tuple[str, str, str, int], dict[str, str]] = field(default_factory=dict)
    changes: list[tuple] = field(
        default_factory=list
    )  # (record, event, instrument, instance, field, old, new)
    imports: int = 0

    @property
    def record_field(self) -> str:
        return self.metadata[0]["field_name"]

    def record_ids(self) -> set[str]:
        return {key[0] for key in self.data}


class FakeRedcap:
    """Every project of the fake server, by token. Thread-safe (the server answers on threads)."""

    def __init__(self) -> None:
        self.projects: dict[str, FakeProject] = {}
        self.lock = threading.Lock()
        self.calls: list[str] = []  # the `content` of every authorised call
        self.faults: list[tuple[int, str]] = []  # (status, body) answered before anything else

    def add_project(
        self,
        *,
        metadata: list[dict] | None = None,
        instruments: list[tuple[str, str]] | None = None,
        repeating: list[str] | None = None,
        events: list[str] | None = None,
        token: str | None = None,
    ) -> FakeProject:
        meta, forms, rep = demo_metadata()
        project = FakeProject(
            token=token or new_token(),
            metadata=metadata if metadata is not None else meta,
            instruments=instruments if instruments is not None else forms,
            repeating=repeating if repeating is not None else rep,
            events=events or [],
        )
        with self.lock:
            self.projects[project.token] = project
        return project

    def fail_next(
        self, count: int, status: int = 503, body: str = "<html>Service Unavailable</html>"
    ) -> None:
        """The next `count` calls get this answer (a proxy's error page, not REDCap JSON)."""
        with self.lock:
            self.faults.extend([(status, body)] * count)

    def take_fault(self) -> tuple[int, str] | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def project_for(self, token: str) -> FakeProject:
        project = self.projects.get(token)
        if project is None:
            raise ApiError(NO_PERMISSION, status=403)
        return project

    # -- the API -------------------------------------------------------------------------------

    def handle(self, params: dict[str, list[str]]) -> Any:
        one = {key: values[0] for key, values in params.items() if values}
        project = self.project_for(one.get("token", ""))
        content = one.get("content", "")
        with self.lock:
            self.calls.append(content)
            if content == "metadata":
                return project.metadata
            if content == "instrument":
                return [{"instrument_name": n, "instrument_label": label} for n, label in project.instruments]
            if content == "repeatingFormsEvents":
                return self._repeating(project)
            if content == "event":
                if not project.events:
                    raise ApiError("You cannot export events for classic projects")
                return [{"unique_event_name": e, "event_name": e} for e in project.events]
            if content == "version":
                return "14.5.0"
            if content == "record":
                if "data" in one:
                    return self._import(project, one)
                return self._export(project, params)
        raise ApiError('The value of the parameter "content" is not valid')

    def _repeating(self, project: FakeProject) -> list[dict]:
        if project.events:
            return [
                {"event_name": e, "form_name": f, "custom_form_label": ""}
                for e in project.events
                for f in project.repeating
            ]
        return [{"form_name": f, "custom_form_label": ""} for f in project.repeating]

    def _import(self, project: FakeProject, one: dict[str, str]) -> Any:
        import json

        if one.get("format", "xml") != "json":
            raise ApiError("This fake only takes format=json")
        try:
            rows = json.loads(one["data"])
        except ValueError as exc:
            raise ApiError("The data being imported is not formatted correctly") from exc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ApiError("The data being imported is not formatted correctly")
        overwrite = one.get("overwriteBehavior", "normal")
        by_name = {row["field_name"]: row for row in project.metadata}
        completes = {f"{name}_complete" for name, _label in project.instruments}
        known = set(by_name) | completes | set(SPECIAL)
        unknown = sorted({key for row in rows for key in row} - known)
        if unknown:
            raise ApiError(
                "The following fields were not found in the project as real data fields: "
                + ", ".join(unknown)
            )
        record_field = project.record_field
        problems: list[str] = []
        planned: list[tuple[tuple[str, str, str, int], dict[str, str]]] = []
        for row in rows:
            record = str(row.get(record_field, "")).strip()
            if not record:
                raise ApiError(
                    f"The record ID field ({record_field}) is missing or blank in one or more rows"
                )
            event = str(row.get("redcap_event_name", ""))
            if project.events:
                if event not in project.events:
                    raise ApiError(
                        f"The following values of redcap_event_name are invalid: {event or '(blank)'}"
                    )
            elif event:
                raise ApiError(
                    "The redcap_event_name field cannot be used in a classic (non-longitudinal) project"
                )
            instrument = str(row.get("redcap_repeat_instrument", "") or "")
            raw_instance = str(row.get("redcap_repeat_instance", "") or "")
            instance = 0
            if instrument:
                if instrument not in project.repeating:
                    raise ApiError(
                        f'The instrument "{instrument}" in redcap_repeat_instrument is not a repeating '
                        "instrument in this project (or this event)"
                    )
                if not re.fullmatch(r"\d+", raw_instance) or not 1 <= int(raw_instance) <= MAX_INSTANCE:
                    raise ApiError(
                        f'The value "{raw_instance}" of redcap_repeat_instance for record "{record}" '
                        f"is not a valid instance number (1 to {MAX_INSTANCE})"
                    )
                instance = int(raw_instance)
            elif raw_instance:
                raise ApiError("redcap_repeat_instance was given without redcap_repeat_instrument")
            values: dict[str, str] = {}
            for key, value in row.items():
                if key in SPECIAL or key == record_field:
                    continue
                text = "" if value is None else str(value)
                form = key[: -len("_complete")] if key in completes else by_name[key]["form_name"]
                if instrument and form != instrument:
                    raise ApiError(
                        f'The field "{key}" is not on the repeating instrument "{instrument}" given in '
                        f'redcap_repeat_instrument for record "{record}"'
                    )
                if not instrument and form in project.repeating:
                    raise ApiError(
                        f'The field "{key}" is on the repeating instrument "{form}": give '
                        "redcap_repeat_instrument and redcap_repeat_instance"
                    )
                if text and key in by_name and not _valid(by_name[key], text):
                    problems.append(f'"{record}","{key}","{text}","{NOT_VALIDATED}"')
                values[key] = text
            planned.append(((record, event, instrument, instance), values))
        if problems:
            raise ApiError("\n".join(problems))
        # All rows are valid: write them (REDCap imports all or nothing).
        for key, values in planned:
            stored = project.data.setdefault(key, {})
            for name, value in values.items():
                old = stored.get(name, "")
                if value == "" and overwrite == "normal":
                    continue
                if old != value:
                    stored[name] = value
                    project.changes.append((*key, name, old, value))
            if not stored and key[2] == "":
                stored[record_field] = key[0]
        project.imports += 1
        records = sorted({key[0] for key, _values in planned})
        if one.get("returnContent", "count") == "ids":
            return records
        return {"count": len(records)}

    def _export(self, project: FakeProject, params: dict[str, list[str]]) -> list[dict]:
        wanted = {v for k, vs in params.items() if k.startswith("records") for v in vs}
        fields = [row["field_name"] for row in project.metadata]
        out = []
        for (record, event, instrument, instance), values in sorted(project.data.items()):
            if wanted and record not in wanted:
                continue
            row = {project.record_field: record}
            if project.events:
                row["redcap_event_name"] = event
            row["redcap_repeat_instrument"] = instrument
            row["redcap_repeat_instance"] = instance or ""
            row.update({name: values.get(name, "") for name in fields if name != project.record_field})
            out.append(row)
        return out
