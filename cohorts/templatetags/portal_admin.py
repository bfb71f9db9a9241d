"""Admin template helpers: a changelist names its page ("Participants — monitoring"), not Django's
"Select monitored participant to change"; actions show only to those who may take them; an audit
event's action and detail read as words and "Key: value" lines."""

from __future__ import annotations

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import capfirst

from cohorts.admin_base import may_act_in

register = template.Library()


@register.simple_tag
def changelist_title(cl) -> str:
    """The model admin's `changelist_title`, else its plural name; popups keep "Select …"."""
    if cl.is_popup:
        return cl.title
    return getattr(cl.model_admin, "changelist_title", None) or capfirst(cl.opts.verbose_name_plural)


@register.filter
def may_act_on(request, participant) -> bool:
    """`{% if request|may_act_on:participant %}`: may this user act on the participant (a coordinator
    of their study and site)? Uses the request's memberships, loaded once: no query per row."""
    return may_act_in(request, participant.study_id, participant.site_id)


def _readable(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return "; ".join(f"{_label(k)}: {_readable(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) for v in value) or "—"
    return str(value)


def _label(key: str) -> str:
    return capfirst(str(key).replace("_", " "))


@register.filter
def readable_detail(detail) -> str:
    """An audit event's detail as "Key: value" lines (never the raw JSON)."""
    if not isinstance(detail, dict):
        return _readable(detail)
    if not detail:
        return "—"
    lines = ((_label(key), _readable(value)) for key, value in detail.items())
    return format_html_join(mark_safe("<br>"), "{}: {}", lines)


@register.filter
def readable_action(code: str) -> str:
    """An audit action's code as words: "participant.link_status" -> "Participant: link status"."""
    subject, _, verb = str(code).partition(".")
    subject = capfirst(subject.replace("_", " "))
    return f"{subject}: {verb.replace('_', ' ')}" if verb else subject
