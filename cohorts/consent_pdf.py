"""The consent form as a PDF the participant can keep: the exact text they were shown and, once they
have consented, their record (version, date and time, choice, typed signature, text fingerprint).

Never a URL or token: the PDF travels (e-mail, printers, shared folders), the private link must not.
"""

from __future__ import annotations

import logging
import unicodedata
from functools import lru_cache
from pathlib import Path

from django.utils.translation import gettext as _
from fpdf import FPDF

from .models import ConsentDocument, ConsentRecord, Study
from .templatetags.consent_text import paragraphs

logger = logging.getLogger(__name__)
# fpdf2 subsets the font with fontTools, which logs every step of every PDF at INFO.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)

#: A Unicode TrueType font, so any language's text is printed exactly (Debian: fonts-dejavu-core,
#: installed by docker/Dockerfile). Without it the PDF falls back to Helvetica (Latin-1 only).
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
FALLBACK_FONT = "helvetica"
BODY_SIZE, TITLE_SIZE, HEADING_SIZE = 11, 16, 13
LINE = 6


@lru_cache(maxsize=1)
def unicode_font_files() -> dict[str, Path] | None:
    for folder in FONT_DIRS:
        files = {style: folder / name for style, name in FONT_FILES.items()}
        if all(path.is_file() for path in files.values()):
            return files
    logger.warning("no Unicode font in %s: consent PDFs use Helvetica (Latin-1 only)", FONT_DIRS)
    return None


class _ConsentPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.set_margins(20, 20, 20)
        self.set_auto_page_break(auto=True, margin=20)
        files = unicode_font_files()
        if files is None:
            self.family = FALLBACK_FONT
        else:
            self.family = "DejaVu"
            for style, path in files.items():
                self.add_font(self.family, style, str(path))

    def text_of(self, text: str) -> str:
        if self.family != FALLBACK_FONT:
            return text
        return unicodedata.normalize("NFC", text).encode("latin-1", "replace").decode("latin-1")

    def block(self, text: str, *, size: int = BODY_SIZE, style: str = "", gap: float = 3) -> None:
        self.set_font(self.family, style, size)
        height = LINE if size <= BODY_SIZE else size * 0.55
        self.multi_cell(0, height, self.text_of(text), align="L", new_x="LMARGIN")
        self.ln(gap)

    def bullet(self, text: str) -> None:
        self.set_font(self.family, "", BODY_SIZE)
        self.cell(6, LINE, "•" if self.family != FALLBACK_FONT else "-")
        self.multi_cell(0, LINE, self.text_of(text), align="L", new_x="LMARGIN")
        self.ln(2)


def consent_pdf(
    *, study: Study, document: ConsentDocument, text: str, record: ConsentRecord | None = None
) -> bytes:
    """`text` is what the participant saw (`render_consent_text`, or the record's `rendered_text`):
    title, version line, body paragraphs, then the document's statements."""
    parts = paragraphs(text)
    statements = len(document.statement_list)
    split = len(parts) - statements
    title, version, body, agreed = parts[0], parts[1], parts[2:split], parts[split:]
    pdf = _ConsentPDF()
    pdf.set_title(title)
    pdf.set_subject(study.name)
    pdf.set_creator(study.name)
    pdf.add_page()
    pdf.block(study.name, gap=1)
    pdf.block(title, size=TITLE_SIZE, style="B", gap=1)
    pdf.block(version, gap=5)
    for paragraph in body:
        pdf.block(paragraph)
    if agreed:
        pdf.block(_("Statements"), size=HEADING_SIZE, style="B", gap=2)
    for statement in agreed:
        pdf.bullet(statement)
    if record is not None:
        pdf.ln(4)
        pdf.block(_("Your consent"), size=HEADING_SIZE, style="B", gap=2)
        choice = _("keep them") if record.keep_data_on_withdrawal else _("delete them")
        for line in (
            _("Consent form version: %(version)s") % {"version": record.version},
            _("Date and time (UTC): %(at)s") % {"at": record.consented_at.strftime("%Y-%m-%d %H:%M:%S")},
            _("You agreed to every statement above."),
            _("Readings collected so far if you leave the study: %(choice)s") % {"choice": choice},
            _("Signed (typed name): %(name)s") % {"name": record.signature},
            _("Participant code: %(code)s") % {"code": record.participant.code},
            _("Fingerprint of the text (SHA-256): %(sha)s") % {"sha": record.text_sha256},
        ):
            pdf.bullet(line)
    return bytes(pdf.output())
