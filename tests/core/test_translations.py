"""Every participant-facing string has a checked translation in every language a study can enable,
the .po files are not stale against the sources, and the compiled catalogues are current."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils.translation.template import templatize

ROOT = Path(settings.BASE_DIR)
#: What participants read: their pages, the forms and views behind them, the consent PDF.
PARTICIPANT_TEMPLATES = ("templates/participant", "templates/withings", "templates/messaging")
PARTICIPANT_PYTHON = (
    "cohorts/forms.py",
    "cohorts/views.py",
    "cohorts/contacts.py",
    "cohorts/consent_pdf.py",
    "cohorts/enrollment.py",
    "measurements/quality.py",
    "measurements/monitoring/next_steps.py",
    "messaging/channels.py",
    "measurements/monitoring/safety_status.py",
)
OTHER_LANGUAGES = [code for code, _name in settings.LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def catalogue(language: str) -> polib.POFile:
    return polib.pofile(str(ROOT / "locale" / language / "LC_MESSAGES" / "django.po"))


def participant_facing(entry: polib.POEntry) -> bool:
    sources = PARTICIPANT_TEMPLATES + PARTICIPANT_PYTHON
    return any(path.startswith(sources) for path, _line in entry.occurrences)


def template_msgids() -> set[tuple[str | None, str]]:
    """(context, msgid) of every translate/blocktranslate tag of the participant templates."""
    found: set[tuple[str | None, str]] = set()
    call = re.compile(r"\b(p?gettext)\((?:u'((?:[^'\\]|\\.)*)',\s*)?u'((?:[^'\\]|\\.)*)'\)")
    for folder in PARTICIPANT_TEMPLATES:
        for path in sorted((ROOT / folder).rglob("*.html")):
            code = templatize(path.read_text(), origin=str(path))
            for kind, context, msgid in call.findall(code):
                found.add((unescape(context) if kind == "pgettext" else None, unescape(msgid)))
    return found


def unescape(text: str) -> str:
    return text.replace("\\'", "'").replace("\\\\", "\\")


def python_msgids() -> set[tuple[str | None, str]]:
    found: set[tuple[str | None, str]] = set()
    for name in PARTICIPANT_PYTHON:
        for node in ast.walk(ast.parse((ROOT / name).read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if node.func.id in {"_", "gettext", "gettext_lazy"} and len(args) == 1:
                found.add((None, args[0]))
            elif node.func.id in {"pgettext", "pgettext_lazy"} and len(args) == 2:
                found.add((args[0], args[1]))
            elif node.func.id == "ngettext" and len(args) == 2:
                found.add((None, args[0]))
    return found


def test_the_sources_have_participant_strings_to_check():
    # Guards the extraction itself: a broken regex would make the tests below pass on nothing.
    assert (None, "Link my Withings account") in template_msgids()
    assert (None, "You have been invited to take part in “%(name)s”.") in template_msgids()
    assert (None, "Please wait a moment") in python_msgids()
    assert len(template_msgids()) > 100


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_participant_string_of_the_sources_is_in_the_catalogue(language):
    """A new or changed string without `makemessages` fails here (it would show in English)."""
    have = {(entry.msgctxt, entry.msgid) for entry in catalogue(language) if not entry.obsolete}
    missing = sorted(str(key) for key in (template_msgids() | python_msgids()) - have)
    assert missing == [], f"run makemessages -l {language} and translate: {missing}"


def problems(po: polib.POFile) -> list[str]:
    """Participant-facing entries without a checked translation that keeps the placeholders."""
    found = []
    for entry in (e for e in po if participant_facing(e) and not e.obsolete):
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not all(text.strip() for text in translations):
            found.append(f"untranslated: {entry.msgid}")
        elif entry.fuzzy:
            found.append(f"fuzzy (unchecked): {entry.msgid}")
        elif any(
            sorted(set(PLACEHOLDER.findall(entry.msgid))) != sorted(set(PLACEHOLDER.findall(text)))
            for text in translations
        ):
            found.append(f"placeholders differ: {entry.msgid}")
    return found


@pytest.mark.parametrize("language", OTHER_LANGUAGES)
def test_every_participant_string_has_a_checked_translation_with_the_same_placeholders(language):
    po = catalogue(language)
    assert len([e for e in po if participant_facing(e)]) > 150
    assert problems(po) == []


def test_the_coverage_check_catches_missing_fuzzy_and_broken_translations():
    po = catalogue("es")
    po.find("Link my Withings account").msgstr = ""
    po.find("Start").flags.append("fuzzy")
    po.find("Version %(version)s").msgstr = "Versión"
    po.find("Take %(n)d reading each day.").msgstr_plural[1] = ""
    assert sorted(problems(po)) == [
        "fuzzy (unchecked): Start",
        "placeholders differ: Version %(version)s",
        "untranslated: Link my Withings account",
        "untranslated: Take %(n)d reading each day.",
    ]


def test_the_compiled_catalogues_are_current():
    call_command("compile_translations", check=True)
