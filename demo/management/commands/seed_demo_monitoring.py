from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Demo monitoring data (idempotent): protocols and synthetic readings for the demo participants."

    def handle(self, *args, **options):
        from measurements.demo import seed_monitoring

        counts = seed_monitoring()
        self.stdout.write(
            self.style.SUCCESS(
                "Monitoring demo: {participants} participants, {readings} new readings, "
                "{alerts} new alerts.".format(**counts)
            )
        )
