"""Admin template helpers: a changelist names its page ("Participants — monitoring"), not Django's
"Select participant monitoring to change"; actions show only to those who may take them."""

from __future__ import annotations

from django import template
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
