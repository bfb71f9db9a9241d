"""What staff hand a participant: a link as a QR code (inline SVG for pages, PNG inside a PDF) and a
one-page printable PDF. Built from our own URLs only."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import qrcode
import qrcode.image.svg
from fpdf import FPDF


@dataclass(frozen=True)
class Handout:
    """One page for one participant: a heading, the link, and the lines of text around it."""

    title: str
    url: str
    lines: list[str] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)


def qr_svg(data: str) -> str:
    """An inline <svg> (no XML declaration, no style attribute: the CSP allows no inline style);
    its size is set by the page's stylesheet."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    return svg[svg.index("<svg") :]


def qr_png(data: str) -> bytes:
    buffer = io.BytesIO()
    qrcode.make(data, box_size=10, border=2).save(buffer, format="PNG")
    return buffer.getvalue()


def _latin1(text: str) -> str:
    """PDF core fonts are Latin-1: typographic punctuation becomes ASCII, anything else a '?'."""
    for fancy, plain in {"—": "-", "–": "-", "“": '"', "”": '"', "‘": "'", "’": "'", "…": "..."}.items():
        text = text.replace(fancy, plain)
    return text.encode("latin-1", "replace").decode("latin-1")


def handout_pdf(handout: Handout) -> bytes:
    return handouts_pdf([handout], title=handout.title)


def handouts_pdf(items: list[Handout], title: str = "Invitations") -> bytes:
    """One page per handout (a printable sheet of many invitations)."""
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_creator("Cohort portal")
    for handout in items:
        _handout_page(pdf, handout)
    return bytes(pdf.output())


def _handout_page(pdf: FPDF, handout: Handout) -> None:
    pdf.add_page()
    pdf.set_font("helvetica", "B", 20)
    pdf.multi_cell(0, 10, _latin1(handout.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("helvetica", size=13)
    for line in handout.lines:
        pdf.multi_cell(0, 7, _latin1(line), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    size = 90
    pdf.image(io.BytesIO(qr_png(handout.url)), x=(pdf.w - size) / 2, y=pdf.get_y() + 4, w=size, h=size)
    pdf.set_y(pdf.get_y() + size + 10)
    pdf.set_font("courier", size=11)
    pdf.multi_cell(0, 6, handout.url, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("helvetica", size=10)
    for line in handout.footer:
        pdf.multi_cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
