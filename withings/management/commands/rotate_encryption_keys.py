"""Re-encrypt every stored secret under the first key of FIELD_ENCRYPTION_KEYS.

Rotation: put the new key first (keep the old ones after it), deploy, run this command, then drop
the old keys. Covers Withings tokens, per-study Withings client secrets and allauth's TOTP secrets
and recovery-code seeds. Works in batches, each under row locks taken in pk order.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from withings.services.keys import rotate_encryption_keys


class Command(BaseCommand):
    help = "Re-encrypt stored tokens and secrets under the first FIELD_ENCRYPTION_KEYS key."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=200)

    def handle(self, *args, batch_size: int, **options):
        counts = rotate_encryption_keys(batch_size=batch_size)
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"total: {sum(counts.values())}"))
