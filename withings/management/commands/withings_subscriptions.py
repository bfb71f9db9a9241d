from django.core.management.base import BaseCommand, CommandError

from withings.errors import WithingsError
from withings.models import WithingsConnection
from withings.selectors import active_connection_ids
from withings.services.subscriptions import APPLIS, connection_check_subscriptions


class Command(BaseCommand):
    help = "List each linked participant's Withings notification subscriptions; --repair resubscribes."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="Subscribe again what is missing.")

    def handle(self, *args, repair=False, **options):
        missing_total = failed = 0
        for connection_id in active_connection_ids():
            label = WithingsConnection.objects.select_related("participant__study").get(pk=connection_id)
            try:
                check = connection_check_subscriptions(connection_id=connection_id, repair=repair)
            except WithingsError as exc:
                failed += 1
                self.stderr.write(f"{label.participant}: {exc.short}")
                continue
            still = check.missing - check.repaired
            missing_total += len(still)
            state = "ok" if not check.missing else f"missing appli {sorted(check.missing)}"
            if check.repaired:
                state += f", resubscribed {sorted(check.repaired)}"
            self.stdout.write(
                f"{label.participant}: subscribed {sorted(check.present)} of {list(APPLIS)}; {state}"
            )
        if failed or missing_total:
            raise CommandError(
                f"{missing_total} subscription(s) missing, {failed} participant(s) unreachable"
            )
