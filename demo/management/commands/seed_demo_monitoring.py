from django.core.management.base import BaseCommand

from demo.monitoring import seed_monitoring


class Command(BaseCommand):
    help = "Demo monitoring data (idempotent): protocols and synthetic readings for the demo participants."

    def handle(self, *args, **options):
        counts = seed_monitoring()
        self.stdout.write(
            self.style.SUCCESS(
                "Monitoring demo: {participants} participants, {readings} new readings, "
                "{alerts} new alerts.".format(**counts)
            )
        )
