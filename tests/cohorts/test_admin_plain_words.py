"""Staff read audit events as words: the action as "Participant: link status", the detail as
"Key: value" lines, never the stored codes or JSON; the inputs of the staff forms all have names."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from cohorts.models import Role
from cohorts.templatetags.portal_admin import readable_action, readable_detail
from tests.factories import AuditEventFactory, MembershipFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def test_actions_and_details_read_as_words():
    assert readable_action("participant.link_status") == "Participant: link status"
    assert readable_action("append") == "Append"
    text = readable_detail({"old_status": "not_linked", "sites": ["north", "south"], "kept": True, "x": None})
    assert text == "Old status: not_linked<br>Sites: north, south<br>Kept: yes<br>X: —"
    assert readable_detail({"a": "<b>"}) == "A: &lt;b&gt;"  # escaped, not markup
    assert readable_detail({}) == "—"


def test_audit_pages_show_no_codes_or_json(client):
    membership = MembershipFactory(role=Role.COORDINATOR)
    participant = ParticipantFactory(study=membership.study)
    event = AuditEventFactory(
        study=membership.study, participant=participant, action="participant.link_status",
        detail={"from": "not_linked", "to": "active", "reason": "linked"},
    )  # fmt: skip
    AuditEventFactory(study=membership.study, participant=participant, action="invitation.created", detail={})
    client.force_login(membership.user)

    html = client.get(reverse("admin:cohorts_auditevent_change", args=[event.pk])).content.decode()
    details = re.search(r'field-details.*?<div class="readonly">(.*?)</div>', html, re.S).group(1)
    # (jsonb keeps its own key order)
    assert sorted(details.split("<br>")) == ["From: not_linked", "Reason: linked", "To: active"]
    assert "{&quot;" not in html
    assert "Participant: link status" in html

    changelist = reverse("admin:cohorts_auditevent_changelist")
    html = client.get(changelist).content.decode()
    assert "Participant: link status" in html
    assert "Invitation: created" in html
    assert ">participant.link_status<" not in html
    # The action filter keeps Django's query string and filters by the stored code.
    html = client.get(changelist + "?action__exact=invitation.created").content.decode()
    assert "Invitation: created" in html
    assert html.count('class="field-action_label"') == 1


def test_date_and_time_inputs_of_the_invitation_form_have_names(client):
    membership = MembershipFactory(role=Role.COORDINATOR)
    client.force_login(membership.user)
    html = client.get(reverse("admin:cohorts_invitation_add")).content.decode()
    assert re.search(r'<input[^>]*name="expires_at_0"[^>]*aria-label="Expires at: date"', html)
    assert re.search(r'<input[^>]*name="expires_at_1"[^>]*aria-label="Expires at: time"', html)
