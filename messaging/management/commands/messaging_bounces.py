"""``manage.py messaging_bounces PATH`` — e-mail bounces (RFC 3464 DSNs) from an mbox file, a single
message file, or standard input (``-``, e.g. piped from the mail server's alias for the bounce
address). Safe to run again over the same mailbox: a message bounces once."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from messaging.bounces import bounces_process, mails_in


class Command(BaseCommand):
    help = "Mark e-mails bounced from the delivery status notifications (DSN) in a mailbox file or stdin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("path", help="An mbox file, a single message (.eml), or - for standard input.")

    def handle(self, *args, path: str, **options) -> None:
        try:
            counts = bounces_process(mails_in(path, stdin=sys.stdin.buffer if path == "-" else None))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise CommandError(f"Cannot read {path!r}: {exc.strerror}.") from None
        self.stdout.write(
            f"{sum(counts.values())} read: {counts['bounced']} bounced, "
            f"{counts['unmatched']} unmatched, {counts['ignored']} not a permanent failure"
        )
