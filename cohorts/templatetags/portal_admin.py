"""Admin template helpers: a changelist names its page ("Participants — monitoring"), not Django's
"Select participant monitoring to change"."""

from __future__ import annotations

from django import template
from django.utils.text import capfirst

register = template.Library()


@register.simple_tag
def changelist_title(cl) -> str:
    """The model admin's `changelist_title`, else its plural name; popups keep "Select …"."""
    if cl.is_popup:
        return cl.title
    return getattr(cl.model_admin, "changelist_title", None) or capfirst(cl.opts.verbose_name_plural)
