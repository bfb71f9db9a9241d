"""Compile the committed translations (``locale/<lang>/LC_MESSAGES/django.po``) into the ``.mo``
files Django reads, in pure Python (polib): a fresh machine needs no GNU gettext (Django's own
``compilemessages`` calls ``msgfmt``). Run by ``make install`` and the Docker build; the ``.mo``
files are build output and are not committed. ``--check`` fails when one is missing or stale."""

from __future__ import annotations

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def stale_catalogues() -> list[tuple[Path, Path]]:
    """(.po, .mo) pairs whose .mo is missing or older than the .po."""
    pairs = [
        (po, po.with_suffix(".mo"))
        for root in settings.LOCALE_PATHS
        for po in sorted(Path(root).glob("*/LC_MESSAGES/*.po"))
    ]
    return [(po, mo) for po, mo in pairs if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime]


class Command(BaseCommand):
    help = "Compile locale/*/LC_MESSAGES/*.po into .mo files (pure Python; no gettext needed)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Fail if a .mo is missing or stale.")

    def handle(self, *args, check: bool = False, **options):
        todo = stale_catalogues()
        if check:
            if todo:
                raise CommandError("Not compiled: " + ", ".join(str(po) for po, _mo in todo))
            return
        for po, mo in todo:
            # Fuzzy entries are left out, as msgfmt does: an unchecked translation is never shown.
            polib.pofile(str(po)).save_as_mofile(str(mo))
            self.stdout.write(f"compiled {mo}")
