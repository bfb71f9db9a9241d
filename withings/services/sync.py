"""Incremental sync and back-fill of one connection: every reading exactly once.

- incremental: ``getmeas lastupdate = watermark − margin``, every page, then the watermark moves to
  the first page's ``updatetime`` — only after all pages are committed. Triggered by notifications
  and by the safety-net poll.
- back-fill: ``lastupdate = start of participation``, one page per call (the task re-queues itself
  at the tail of the back-fill queue), so a long history cannot starve other participants. The
  cursor is stored on the connection, so a killed worker resumes where the last commit left off.

Both hold the connection's lock (one sync per connection at a time, across all workers) and upsert
by (participant, grpid): re-running any page changes nothing. Both skip (and count as skipped,
``before_participation``) readings measured before ``participation_start`` — however they arrive:
in the back-fill, synced late, or edited upstream — so the study's data does not depend on the path.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils.timezone import now

from cohorts.enrollment import participant_collection_refusal
from cohorts.selectors import participation_start as participant_data_start
from cohorts.services import participant_mark_active
from measurements.imports.services import csv_duplicates_link
from measurements.readings import UpsertResult, readings_store_api_page
from withings.client import IDENTICAL_CALL_WINDOW
from withings.getmeas import CATEGORY_REAL, MEASTYPES, GetmeasPage, read_page
from withings.locks import exclusive
from withings.models import Notification, WithingsConnection
from withings.selectors import REFRESHABLE, stalled_backfills

from .api import ConnectionApi

logger = logging.getLogger(__name__)
MAX_PAGES_PER_RUN = 1000
#: Offset paging holds only while upstream's order stands still. Withings documents no order; if it
#: sorts by ``modified``, an edit during a multi-page pass moves the edited group to the end and
#: slides the groups behind it back by one, so one can slip onto a page already fetched. A pass that
#: saw an edit made while it ran (a group created before the pass began and modified since) is
#: followed by a verification pass — up to this many — from the first page again (one second
#: earlier, so it is never the identical call Withings refuses within 10 s). Upserts make the
#: re-read harmless.
MAX_VERIFY_PASSES = 2


def _edited_during(groups: list, since: int | None) -> int:
    """Groups in a page that were edited after ``since`` (upstream time) although created before."""
    if since is None:
        return 0
    edited = 0
    for group in groups:
        if not isinstance(group, dict):
            continue
        try:
            created, modified = int(group["created"]), int(group["modified"])
        except (KeyError, TypeError, ValueError):
            continue
        edited += created < since <= modified
    return edited


class SyncBusy(Exception):
    """Another worker is syncing this connection right now: try again shortly."""


class SyncStopped(Exception):
    """The connection cannot be synced (unlinked, needs re-authorisation)."""


class SyncTooSoon(Exception):
    """A notification's sync would start within the identical-call window of the connection's last
    one: run it after ``wait_seconds``, when one sync covers every delivery that came meanwhile."""

    def __init__(self, connection_id: int, wait_seconds: float) -> None:
        super().__init__(
            f"connection {connection_id} synced {IDENTICAL_CALL_WINDOW - wait_seconds:.0f} s ago"
        )
        self.wait_seconds = wait_seconds


@contextmanager
def _sync_window(connection_id: int, *, coalesce: bool) -> Iterator[None]:
    """Claim the connection's identical-call window for a notification sync. A sync that fails gives
    it back: its retry is the same sync, already held back by the retry's own countdown."""
    if not coalesce:
        yield
        return
    key = f"withings:sync-window:{connection_id}"
    if not cache.add(key, time.time(), timeout=IDENTICAL_CALL_WINDOW):
        began = float(cache.get(key) or time.time())
        raise SyncTooSoon(connection_id, max(1.0, IDENTICAL_CALL_WINDOW - (time.time() - began)))
    try:
        yield
    except BaseException:
        cache.delete(key)
        raise


@dataclass
class SyncResult:
    pages: int = 0
    groups: int = 0
    upsert: UpsertResult = field(default_factory=UpsertResult)
    skipped: Counter = field(default_factory=Counter)
    more: bool = False  # back-fill: another page is waiting
    chain: int | None = None  # back-fill: the chain the next queued step belongs to
    superseded: bool = False  # back-fill: this step's chain was replaced by the scanner's

    @property
    def stored(self) -> int:
        return self.upsert.inserted + self.upsert.updated


def participation_start(connection: WithingsConnection) -> dt.datetime:
    """Where the back-fill starts and what every API path stores from: the study's start date, else
    the participant's own (the rule the CSV import applies too, ``cohorts.selectors.participation_start``),
    else WITHINGS_BACKFILL_DAYS_DEFAULT before linking."""
    start = participant_data_start(connection.participant)
    if start is None:
        return connection.linked_at - dt.timedelta(days=settings.WITHINGS_BACKFILL_DAYS_DEFAULT)
    return start


def _fetch_page(api: ConnectionApi, *, lastupdate: int, offset: int | None) -> GetmeasPage:
    params: dict[str, object] = {
        "action": "getmeas",
        "meastypes": MEASTYPES,
        "category": CATEGORY_REAL,
        "lastupdate": lastupdate,
    }
    if offset:
        params["offset"] = offset
    return read_page(api.post("/measure", params))


def _store_page(
    connection: WithingsConnection, page: GetmeasPage, result: SyncResult, *, not_before: dt.datetime | None
) -> None:
    stored = readings_store_api_page(
        participant_id=connection.participant_id,
        groups=page.groups,
        source_timezone=page.timezone or connection.participant.timezone,
        not_before=not_before,
    )
    result.pages += 1
    result.groups += len(page.groups)
    result.skipped.update(stored.skipped)
    result.upsert += stored.upsert
    if stored.upsert.inserted:
        participant_mark_active(participant_id=connection.participant_id)
        # The same reading imported earlier from the CSV export is marked as a duplicate of it.
        csv_duplicates_link(participant_id=connection.participant_id)


def _usable(connection_id: int) -> WithingsConnection:
    connection = WithingsConnection.objects.select_related("participant", "participant__study", "app").get(
        pk=connection_id
    )
    if connection.status not in REFRESHABLE:
        raise SyncStopped(f"connection is {connection.status}")
    if refusal := participant_collection_refusal(connection.participant):
        raise SyncStopped(refusal)
    return connection


def connection_sync(*, connection_id: int, coalesce: bool = False) -> SyncResult:
    """Fetch everything created or modified since the watermark; move it only after commit.

    ``coalesce`` (notification syncs): at most one sync per connection per identical-call window;
    a later one raises ``SyncTooSoon`` and, run after the window, covers all deliveries since."""
    with exclusive(f"withings-sync:{connection_id}", ttl=settings.WITHINGS_SYNC_LOCK_TTL) as held:
        if not held:
            raise SyncBusy(connection_id)
        with _sync_window(connection_id, coalesce=coalesce):
            return _sync_locked(connection_id)


def _sync_locked(connection_id: int) -> SyncResult:
    connection = _usable(connection_id)
    started = now()
    api = ConnectionApi.for_connection(connection)
    if connection.sync_watermark is None:
        # The back-fill has not fetched its first page yet (it sets the watermark; until it has
        # paged through everything since the participation start it owns history). What a
        # notification announces was uploaded since linking: fetch just that now, rather than
        # after the whole history, and leave the watermark to the back-fill.
        lastupdate = int(connection.linked_at.timestamp()) - settings.WITHINGS_SYNC_MARGIN_SECONDS
    else:
        lastupdate = max(0, connection.sync_watermark - settings.WITHINGS_SYNC_MARGIN_SECONDS)
    result, first_updatetime = SyncResult(), None
    start = participation_start(connection)
    for verify in range(MAX_VERIFY_PASSES + 1):
        offset, since, edited = None, None, 0
        while True:
            page = _fetch_page(api, lastupdate=lastupdate - verify, offset=offset)
            first_updatetime = first_updatetime or page.updatetime
            since = since or page.updatetime
            with transaction.atomic():
                _store_page(connection, page, result, not_before=start)
            edited += _edited_during(page.groups, since) if offset else 0
            if not page.more or result.pages >= MAX_PAGES_PER_RUN:
                break
            offset = page.offset
        if not edited or result.pages >= MAX_PAGES_PER_RUN:
            break
    if connection.sync_watermark is None:
        _finish(connection, started=started, watermark=None)
    else:
        watermark = first_updatetime or int(started.timestamp())
        _finish(connection, started=started, watermark=max(watermark, connection.sync_watermark))
    logger.info(
        "withings sync connection=%s pages=%s inserted=%s updated=%s",
        connection_id,
        result.pages,
        result.upsert.inserted,
        result.upsert.updated,
    )
    return result


def connection_backfill_step(
    *, connection_id: int, chain: int | None = None, _locked: WithingsConnection | None = None
) -> SyncResult:
    """One page of the history back-fill; ``result.more`` says whether to queue the next step (with
    ``result.chain``). A step of a chain the scanner has since replaced does nothing
    (``result.superseded``): the re-queued back-fill and a chain that was only slow collapse into one.
    A redelivered step of the current chain goes on from the committed cursor."""
    if _locked is None:
        with exclusive(f"withings-sync:{connection_id}", ttl=settings.WITHINGS_SYNC_LOCK_TTL) as held:
            if not held:
                raise SyncBusy(connection_id)
            return connection_backfill_step(
                connection_id=connection_id, chain=chain, _locked=_usable(connection_id)
            )
    connection = _locked
    if chain is not None and connection.backfill_chain != chain:
        return SyncResult(superseded=True)
    if connection.backfill_completed_at is not None and not connection.backfill_cursor:
        # A second chain of steps (a notification's sync can start one while after_link's is
        # queued) finds the history already fetched: restarting from page 1 would spend the rate
        # budget on the whole history again, and repeat a call Withings refuses within 10 s.
        return SyncResult()
    started = now()
    cursor = connection.backfill_cursor or {}
    start = participation_start(connection)
    lastupdate = int(cursor.get("lastupdate") or start.timestamp())
    api = ConnectionApi.for_connection(connection)
    offset = cursor.get("offset")
    page = _fetch_page(api, lastupdate=lastupdate, offset=offset)
    since = cursor.get("since") or page.updatetime
    edited = cursor.get("edited", 0) + (_edited_during(page.groups, since) if offset else 0)
    verify = cursor.get("verify", 0)
    more = page.more or (edited > 0 and verify < MAX_VERIFY_PASSES)
    result = SyncResult()
    with transaction.atomic():
        _store_page(connection, page, result, not_before=start)
        fields: dict[str, object] = {
            "last_sync_at": now(),
            "backfill_progress_at": now(),
        }
        if connection.sync_watermark is None:
            # Everything changed after this instant is the incremental sync's; the back-fill
            # covers what came before (its cursor survives a killed worker).
            fields["sync_watermark"] = page.updatetime or int(started.timestamp())
        if page.more:
            fields["backfill_cursor"] = {
                "lastupdate": lastupdate, "offset": page.offset,
                "since": since, "edited": edited, "verify": verify,
            }  # fmt: skip
        elif more:  # the pass saw an edit made while it ran: read it all once more
            fields["backfill_cursor"] = {"lastupdate": lastupdate - 1, "offset": None, "verify": verify + 1}
        else:
            fields["backfill_cursor"] = None
            fields["backfill_completed_at"] = now()
        WithingsConnection.objects.filter(pk=connection.pk).update(**fields)
        if connection.sync_watermark is None:
            # Only the page that sets the watermark covers what was announced before it: those
            # groups existed when the back-fill began, so its pages will see them. A delivery that
            # arrives later may announce a group on a page already passed (Withings documents no
            # order): only the incremental sync its own task runs is sure to fetch it.
            _mark_notifications_processed(connection.pk, started)
    result.more = more
    result.chain = connection.backfill_chain
    return result


def connection_record_error(*, connection_id: int, what: str, exc: Exception) -> None:
    """Show the coordinator why a connection's work failed (Withings' error text, never a token)."""
    short = getattr(exc, "short", type(exc).__name__)
    WithingsConnection.objects.filter(pk=connection_id).update(
        last_error=f"{what}: {short}"[:255], last_error_at=now()
    )


def _finish(connection: WithingsConnection, *, started: dt.datetime, watermark: int | None) -> None:
    with transaction.atomic():
        fields: dict[str, object] = {"last_sync_at": now()}
        if watermark is not None:
            fields["sync_watermark"] = watermark
        WithingsConnection.objects.filter(pk=connection.pk).update(**fields)
        _mark_notifications_processed(connection.pk, started)


def _mark_notifications_processed(connection_id: int, started: dt.datetime) -> int:
    """Deliveries received before this sync began are covered by it (coalescing)."""
    return Notification.objects.filter(
        connection_id=connection_id,
        status=Notification.Status.PENDING,
        received_at__lte=started,
    ).update(status=Notification.Status.PROCESSED, processed_at=now())


def connection_backfills_to_resume(*, at: dt.datetime | None = None) -> list[tuple[int, int]]:
    """Open back-fills of usable connections with no progress for WITHINGS_BACKFILL_STALL_SECONDS, as
    (connection id, new chain). Each gets a new chain (a slow old one stops at its next step) and its
    progress time set to now, so it is re-queued at most once per stall period."""
    at = at or now()
    with transaction.atomic():
        stalled = list(
            stalled_backfills(at=at).select_for_update(skip_locked=True).values_list("pk", flat=True)
        )
        WithingsConnection.objects.filter(pk__in=stalled).update(
            backfill_progress_at=at, backfill_chain=F("backfill_chain") + 1
        )
        return list(WithingsConnection.objects.filter(pk__in=stalled).values_list("pk", "backfill_chain"))
