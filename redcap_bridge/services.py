"""Writes of the REDCap bridge: checking and saving a study's project settings, and pushing.

A push is idempotent: every repeat instance the portal fills is numbered once and the number kept
(`RedcapPushedRow`), rows REDCap already has (same content hash) are not sent again, and imports use
``overwriteBehavior=normal`` (a blank never erases what someone entered in REDCap). Batches that fail
for a transient reason are retried a bounded number of times; REDCap's refusals are not retried and
its own error text is kept in the push log. Everything is audited, never with the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Max, Q
from django.utils.timezone import now

from cohorts.services import audit_record

from .client import RedcapClient, RedcapFailure
from .mapping import check_field_map, format_value, sources_for
from .models import RedcapProject, RedcapPushedRow, RedcapPushLog
from .selectors import Candidate, candidates

MAX_ATTEMPTS = 3  # per batch, for transient failures
BACKOFF_SECONDS = (2.0, 8.0)
LEASE = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class ProjectCheck:
    problems: list[str]
    field_types: dict[str, str]
    record_id_field: str


def redcap_project_check(
    *, api_url: str, token: str, mode: str, instrument: str, event: str, field_map: dict[str, str]
) -> ProjectCheck:
    """Ask REDCap for the project's metadata, instruments, repeating instruments (and events) and
    check the settings against them. Never raises for REDCap's answers: they become problems."""
    client = RedcapClient(api_url, token)
    try:
        metadata = client.metadata()
        instruments = client.instruments()
        repeating = client.repeating()
        events = client.events()
    except RedcapFailure as exc:
        return ProjectCheck([exc.message], {}, "")
    problems, types = check_field_map(
        mode=mode, instrument=instrument, event=event, field_map=field_map, metadata=metadata,
        instruments=instruments, repeating=repeating, events=events,
    )  # fmt: skip
    return ProjectCheck(problems, types, metadata[0]["field_name"] if metadata else "")


def redcap_project_save(
    *, actor, project: RedcapProject, check: ProjectCheck, changed: list[str], token_changed: bool
) -> RedcapProject:
    """Save settings that passed `redcap_project_check`. Audited by field name (never values of the
    token). A changed instrument or record prefix starts a fresh numbering of instances."""
    if check.problems:
        raise ValueError("refusing to save a REDCap project that failed its check")
    with transaction.atomic():
        created = project.pk is None
        project.field_types = check.field_types
        project.record_id_field = check.record_id_field
        project.checked_at = now()
        project.updated_at = now()
        project.full_clean(exclude=["token"])
        project.save()
        audit_record(
            actor=actor,
            action="redcap.project_created" if created else "redcap.project_changed",
            study=project.study,
            target=project.study.slug,
            detail={
                "fields": sorted(set(changed) - {"token"}),
                "token_changed": token_changed,
                "mode": project.mode,
                "instrument": project.instrument,
                "mapped": sorted(project.field_map),
            },
        )
    return project


def _row_hash(row: dict) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True).encode()).hexdigest()


@dataclass
class _Planned:
    candidate: Candidate
    record: str
    instance: int
    payload: dict
    digest: str
    mapping: RedcapPushedRow | None


def _plan(project: RedcapProject, since: dt.date | None, resend: bool) -> tuple[list[_Planned], int]:
    """Every row to send (new or changed), with its instance; and how many were unchanged."""
    sources = sources_for(project.mode)
    known = {
        r.source_key: r
        for r in RedcapPushedRow.objects.filter(project=project, instrument=project.instrument)
    }
    next_instance: dict[str, int] = {
        row["record"]: row["top"]
        for row in RedcapPushedRow.objects.filter(project=project, instrument=project.instrument)
        .values("record")
        .annotate(top=Max("instance"))
    }
    planned: list[_Planned] = []
    unchanged = 0
    for candidate in candidates(project, since):
        record = f"{project.record_prefix}{candidate.code}"
        mapping = known.get(candidate.source_key)
        if mapping is not None and mapping.record == record:
            instance = mapping.instance
        elif candidate.period is not None:
            instance = candidate.period
        else:
            instance = next_instance.get(record, 0) + 1
            next_instance[record] = instance
        payload: dict[str, str | int] = {project.record_id_field or "record_id": record}
        if project.event:
            payload["redcap_event_name"] = project.event
        payload["redcap_repeat_instrument"] = project.instrument
        payload["redcap_repeat_instance"] = instance
        for source_name, field_name in sorted(project.field_map.items()):
            source = sources[source_name]
            payload[field_name] = format_value(
                candidate.values.get(source_name), source.kind, project.field_types.get(field_name, "")
            )
        digest = _row_hash(payload)
        if mapping is not None and mapping.record == record and mapping.sent_hash == digest and not resend:
            unchanged += 1
            continue
        planned.append(_Planned(candidate, record, instance, payload, digest, mapping))
    return planned, unchanged


def _claim(project_id: int) -> bool:
    at = now()
    return bool(
        RedcapProject.objects.filter(pk=project_id)
        .filter(Q(push_started_at__isnull=True) | Q(push_started_at__lt=at - LEASE))
        .update(push_started_at=at)
    )


def _remember_instances(project: RedcapProject, planned: list[_Planned]) -> None:
    """Keep the instance numbers before sending: a failed push re-sends to the same instances."""
    new = [p for p in planned if p.mapping is None]
    moved = [p for p in planned if p.mapping is not None and p.mapping.record != p.record]
    with transaction.atomic():
        for p in moved:
            assert p.mapping is not None
            p.mapping.record, p.mapping.instance, p.mapping.sent_hash = p.record, p.instance, ""
            p.mapping.save(update_fields=["record", "instance", "sent_hash"])
        created = RedcapPushedRow.objects.bulk_create(
            [
                RedcapPushedRow(
                    project=project,
                    participant_id=p.candidate.participant_id,
                    source_key=p.candidate.source_key,
                    record=p.record,
                    instrument=project.instrument,
                    instance=p.instance,
                )
                for p in new
            ],
            batch_size=2000,
        )
        for p, row in zip(new, created, strict=True):
            p.mapping = row


def redcap_push(
    *,
    project_id: int,
    trigger: str,
    actor=None,
    dry_run: bool = False,
    since: dt.date | None = None,
    resend: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> RedcapPushLog:
    """Push the study's readings (or period summaries) to its REDCap project. Returns the push log."""
    project = RedcapProject.objects.select_related("study").get(pk=project_id)
    log = RedcapPushLog.objects.create(
        study=project.study, project=project, trigger=trigger, since=since,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
    )  # fmt: skip
    if not dry_run and not _claim(project.pk):
        return _finish(log, RedcapPushLog.Status.SKIPPED, "Another push of this project is running.", actor)
    try:
        return _push(project, log, actor=actor, dry_run=dry_run, since=since, resend=resend, sleep=sleep)
    finally:
        if not dry_run:
            RedcapProject.objects.filter(pk=project.pk).update(push_started_at=None)


def _push(project, log, *, actor, dry_run, since, resend, sleep) -> RedcapPushLog:
    planned, unchanged = _plan(project, since, resend)
    log.rows_considered = len(planned) + unchanged
    log.rows_unchanged = unchanged
    if dry_run:
        log.rows_sent = len(planned)  # would be sent: the status says nothing was
        return _finish(log, RedcapPushLog.Status.DRY_RUN, "", actor)
    if not planned:
        RedcapProject.objects.filter(pk=project.pk).update(last_push_at=now())
        return _finish(log, RedcapPushLog.Status.OK, "", actor)
    _remember_instances(project, planned)
    client = RedcapClient(project.api_url, project.token)
    size = project.batch_size
    for start in range(0, len(planned), size):
        batch = planned[start : start + size]
        try:
            count = _send(client, [p.payload for p in batch], log, sleep)
        except RedcapFailure as exc:
            status = RedcapPushLog.Status.PARTIAL if log.rows_sent else RedcapPushLog.Status.FAILED
            return _finish(log, status, exc.message, actor)
        _mark_sent(batch, now())
        log.rows_sent += len(batch)
        log.records_reported += count
        log.batches += 1
        log.save(update_fields=["rows_sent", "records_reported", "batches", "retries"])
    RedcapProject.objects.filter(pk=project.pk).update(last_push_at=now())
    return _finish(log, RedcapPushLog.Status.OK, "", actor)


def _mark_sent(batch: list[_Planned], stamp: dt.datetime) -> None:
    """Record what REDCap now has, in one UPDATE … FROM (VALUES …) (``bulk_update`` builds a CASE
    per row and was most of a push's time)."""
    pairs = []
    for p in batch:
        assert p.mapping is not None
        assert p.mapping.pk is not None
        pairs.append((p.mapping.pk, p.digest))
    if connection.vendor != "postgresql":  # SQLite (make run's default) has no VALUES column aliases
        for p in batch:
            assert p.mapping is not None
            p.mapping.sent_hash, p.mapping.pushed_at = p.digest, stamp
        RedcapPushedRow.objects.bulk_update(
            [p.mapping for p in batch if p.mapping], ["sent_hash", "pushed_at"]
        )
        return
    table = RedcapPushedRow._meta.db_table
    values = ", ".join(["(%s, %s)"] * len(pairs))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET sent_hash = v.h, pushed_at = %s "  # noqa: S608 — our table name, values bound
            f"FROM (VALUES {values}) AS v(id, h) WHERE {table}.id = v.id",
            [stamp, *[x for pair in pairs for x in pair]],
        )


def _send(client: RedcapClient, rows: list[dict], log: RedcapPushLog, sleep) -> int:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return client.import_rows(rows)
        except RedcapFailure as exc:
            if not exc.transient or attempt == MAX_ATTEMPTS:
                raise
            log.retries += 1
            sleep(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])
    raise AssertionError("unreachable")


def _finish(log: RedcapPushLog, status: str, error: str, actor) -> RedcapPushLog:
    log.status = status
    log.error = error
    log.finished_at = now()
    log.save()
    audit_record(
        actor=actor,
        action="redcap.dry_run" if status == RedcapPushLog.Status.DRY_RUN else "redcap.pushed",
        study=log.study,
        target=log.study.slug,
        detail={
            "status": status,
            "trigger": log.trigger,
            "rows_sent": log.rows_sent,
            "rows_unchanged": log.rows_unchanged,
            "records_reported": log.records_reported,
            "retries": log.retries,
            "error": error[:500],
            "log": log.pk,
        },
    )
    return log


def redcap_projects_due(at: dt.datetime | None = None) -> list[int]:
    """Projects on a schedule whose last push is older than their interval (or that never pushed)."""
    at = at or now()
    due = []
    for pk, last, hours in RedcapProject.objects.filter(auto_push=True).values_list(
        "pk", "last_push_at", "push_every_hours"
    ):
        if last is None or last <= at - dt.timedelta(hours=hours):
            due.append(pk)
    return due
