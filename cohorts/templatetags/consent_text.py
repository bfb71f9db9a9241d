"""`consent_paragraphs`: consent text as HTML paragraphs for a phone screen.

A blank line starts a new paragraph; single line breaks are the source's hard wrapping and are
joined into the paragraph (unlike Django's `linebreaks`, which keeps them as ``<br>``). HTML in the
text is escaped.
"""

from __future__ import annotations

import re

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

register = template.Library()

BLANK_LINE = re.compile(r"\n[ \t]*\n")


def paragraphs(text: str) -> list[str]:
    """The paragraphs of `text`, each on one line with its inner whitespace collapsed."""
    normalised = str(text).replace("\r\n", "\n").replace("\r", "\n")
    joined = (" ".join(block.split()) for block in BLANK_LINE.split(normalised))
    return [p for p in joined if p]


@register.filter(is_safe=True)
def consent_paragraphs(text: str) -> SafeString:
    return format_html_join("\n", "<p>{}</p>", ((p,) for p in paragraphs(text or "")))
