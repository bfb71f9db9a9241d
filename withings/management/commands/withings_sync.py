import time

from django.core.management.base import BaseCommand, CommandError

from withings.errors import WithingsError, WithingsRateLimited, WithingsTransientError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE
from withings.services.sync import (
    SyncBusy,
    SyncResult,
    SyncStopped,
    connection_backfill_step,
    connection_sync,
)

#: Attempts per participant for transient faults (a 601 waits its ``wait_seconds``, others 10 s).
ATTEMPTS = 5
MAX_WAIT_SECONDS = 120


class Command(BaseCommand):
    help = (
        "Sync Withings readings now (all linked participants, one study, or one participant): new and "
        "changed readings, and the rest of any unfinished history back-fill. Transient faults are "
        "retried; the exit status is non-zero only for participants still failing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--study", metavar="SLUG")
        parser.add_argument("--participant", metavar="SLUG:CODE")

    def handle(self, *args, study=None, participant=None, **options):
        connections = WithingsConnection.objects.filter(status__in=REFRESHABLE)
        if study:
            connections = connections.filter(participant__study__slug=study)
        if participant:
            slug, sep, code = participant.partition(":")
            if not sep or not code:
                raise CommandError("--participant takes SLUG:CODE, e.g. demo:DE-001")
            connections = connections.filter(participant__study__slug=slug, participant__code=code)
        ids = list(connections.order_by("pk").values_list("pk", flat=True))
        if not ids:
            raise CommandError("No linked participant matches.")
        totals = {"inserted": 0, "updated": 0, "failed": 0}
        for connection_id in ids:
            label = WithingsConnection.objects.get(pk=connection_id).participant
            try:
                result = self._sync(connection_id, label)
            except (WithingsError, SyncBusy, SyncStopped) as exc:
                totals["failed"] += 1
                self.stderr.write(f"{label}: failed: {getattr(exc, 'short', exc)}")
                continue
            totals["inserted"] += result.upsert.inserted
            totals["updated"] += result.upsert.updated
            self.stdout.write(f"{label}: {result.upsert.inserted} new, {result.upsert.updated} updated")
        self.stdout.write(
            f"{len(ids)} participant(s): {totals['inserted']} new, {totals['updated']} updated, "
            f"{totals['failed']} failed"
        )
        if totals["failed"]:
            raise CommandError(f"{totals['failed']} participant(s) could not be synced")

    def _sync(self, connection_id: int, label) -> SyncResult:
        """New readings, then every remaining page of an unfinished back-fill."""
        result = self._attempt(label, lambda: connection_sync(connection_id=connection_id))
        while WithingsConnection.objects.filter(
            pk=connection_id, backfill_completed_at__isnull=True
        ).exists():
            step = self._attempt(label, lambda: connection_backfill_step(connection_id=connection_id))
            result.upsert += step.upsert
            if not step.more:
                break
        return result

    def _attempt(self, label, call) -> SyncResult:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call()
            except (WithingsTransientError, SyncBusy) as exc:
                if attempt == ATTEMPTS:
                    raise
                wait = exc.wait_seconds if isinstance(exc, WithingsRateLimited) else 10
                wait = min(MAX_WAIT_SECONDS, max(1.0, float(wait)))
                self.stderr.write(f"{label}: {getattr(exc, 'short', exc)}; retry {attempt} in {wait:.0f} s")
                time.sleep(wait)
        raise AssertionError("unreachable")
