from django.core.management.base import BaseCommand, CommandError

from withings.errors import WithingsError
from withings.models import WithingsConnection
from withings.selectors import REFRESHABLE
from withings.services.sync import SyncBusy, SyncStopped, connection_backfill_step, connection_sync


class Command(BaseCommand):
    help = "Sync Withings readings now (all linked participants, one study, or one participant)."

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
                result = connection_sync(connection_id=connection_id)
                while result.more:  # a back-fill in progress: finish it here
                    more = connection_backfill_step(connection_id=connection_id)
                    result.upsert += more.upsert
                    result.more = more.more
            except (WithingsError, SyncBusy, SyncStopped) as exc:
                totals["failed"] += 1
                self.stderr.write(f"{label}: {getattr(exc, 'short', exc)}")
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
