"""Development: make a participant's (sandbox) cuff "sync" a new reading, as Withings would."""

import json
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from withings.models import WithingsConnection


class Command(BaseCommand):
    help = "Sandbox only: add a reading for SLUG:CODE and let the sandbox notify the portal."

    def add_arguments(self, parser):
        parser.add_argument("participant", metavar="SLUG:CODE")
        parser.add_argument("--systolic", type=int, default=138)
        parser.add_argument("--diastolic", type=int, default=86)
        parser.add_argument("--pulse", type=int, default=72)

    def handle(self, *args, participant, systolic, diastolic, pulse, **options):
        if not settings.WITHINGS_SANDBOX_MOUNTED and "sandbox" not in settings.WITHINGS_API_URL:
            raise CommandError("This only works against the Withings sandbox.")
        slug, _, code = participant.partition(":")
        connection = WithingsConnection.objects.filter(
            participant__study__slug=slug, participant__code=code
        ).first()
        if connection is None:
            raise CommandError(f"{participant} has no Withings link.")
        group = {
            "date": int(time.time()) - 30,
            "attrib": 0,
            "category": 1,
            "measures": [
                {"type": 9, "value": diastolic * 100, "unit": -2, "algo": 0, "fm": 3},
                {"type": 10, "value": systolic * 100, "unit": -2, "algo": 0, "fm": 3},
                {"type": 11, "value": pulse * 100, "unit": -2, "algo": 0, "fm": 3},
            ],
        }
        url = f"{settings.WITHINGS_API_URL}/_sandbox/users/{connection.withings_userid}/sync"
        request = urllib.request.Request(  # noqa: S310 — our own sandbox URL
            url,
            data=json.dumps({"groups": [group], "wait": True}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            body = json.loads(response.read())
        self.stdout.write(f"Cuff synced {systolic}/{diastolic} for {participant}: {body}")
