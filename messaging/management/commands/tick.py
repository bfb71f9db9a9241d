"""``manage.py tick [--at ISO8601] [--study SLUG] [--dry-run]``: every time-driven rule as of an instant."""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils.timezone import now

from cohorts.models import Study
from core.ticking import TickRequest, tick_run
from messaging.dispatch import dispatch_due


def parse_instant(value: str) -> dt.datetime:
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--at {value!r} is not an ISO 8601 instant (e.g. 2026-03-02T07:00:00Z).") from exc
    if instant.tzinfo is None:
        raise CommandError(f"--at {value!r} has no UTC offset: write e.g. 2026-03-02T07:00:00Z or +01:00.")
    return instant.astimezone(dt.UTC)


class Command(BaseCommand):
    help = (
        "Run every time-driven rule (reminders and prompts) as of an instant; without --at, then send "
        "what is due. Idempotent: the same instant twice does nothing new."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--at", help="The instant (ISO 8601 with offset); default now.")
        parser.add_argument("--study", help="Only this study (slug).")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be sent; write nothing.")

    def handle(self, *args, at=None, study=None, dry_run=False, **options) -> None:
        instant = parse_instant(at) if at else now()
        if study and not Study.objects.filter(slug=study).exists():
            raise CommandError(f"No study with the slug {study!r}.")
        lines = tick_run(TickRequest(at=instant, study=study, dry_run=dry_run))
        head = "Dry run (nothing written)" if dry_run else "Tick"
        self.stdout.write(f"{head} at {instant.isoformat()}: {sum(line.count for line in lines)} in all")
        for line in lines:
            self.stdout.write(f"  {line.study}: {line.what} {line.count}")
            for sample in line.samples:
                self.stdout.write(f"      {sample}")
        # A live run also sends what is due now; a replay (--at) only queues, the dispatcher's beat
        # (every minute) sends in real time.
        if not dry_run and not at:
            self.stdout.write(f"Sent {dispatch_due()}")
