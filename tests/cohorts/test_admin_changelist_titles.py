"""Every changelist staff can open names its page; none says Django's "Select X to change/view"."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.urls import reverse

from cohorts.models import Role
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

TITLES = {
    "account.emailaddress": "Email addresses",
    "api.accesstoken": "API access tokens",
    "auth.group": "Groups",
    "cohorts.auditevent": "Audit events",
    "cohorts.consentdocument": "Consent documents",
    "cohorts.consentrecord": "Consent records",
    "cohorts.consenttext": "Consent texts",
    "cohorts.invitation": "Invitations",
    "cohorts.participant": "Participants",
    "cohorts.participantcontact": "Participant contact details",
    "cohorts.site": "Sites",
    "cohorts.study": "Studies",
    "cohorts.studymembership": "Study memberships",
    "cohorts.user": "Users",
    "measurements.alert": "Alerts",
    "measurements.exportjob": "Exports",
    "measurements.monitoredparticipant": "Participants — monitoring",
    "measurements.safetyplan": "Safety plans",
    "measurements.studyprotocol": "Study protocols",
    "measurements.withingscsvimport": "Withings CSV import — participants",
    "messaging.inboundmessage": "Inbound messages",
    "messaging.message": "Messages",
    "messaging.messagetemplate": "Message templates",
    "messaging.studymessaging": "Reminder rules",
    "mfa.authenticator": "Authenticators",
    "redcap_bridge.redcapproject": "REDCap projects",
    "redcap_bridge.redcappushlog": "REDCap pushes",
    "withings.withingsapp": "Withings apps",
    "withings.withingsconnection": "Withings connections",
}


def titles(client, model) -> tuple[str, str]:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.content.decode()
    h1 = re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1).strip()
    return h1, title


def test_every_changelist_an_operator_sees_has_a_human_title(client):
    client.force_login(UserFactory(is_superuser=True))
    seen = {}
    for model in admin.site._registry:
        h1, title = titles(client, model)
        seen[model._meta.label_lower] = h1
        assert title == f"{h1} | Cohort portal"
        assert "Select" not in title
    assert seen == TITLES


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.DATA_MANAGER, Role.INVESTIGATOR])
def test_study_staff_see_the_same_titles(client, role):
    client.force_login(MembershipFactory(role=role).user)
    seen = {}
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        if client.get(url).status_code != 200:
            continue
        h1, title = titles(client, model)
        seen[model._meta.label_lower] = h1
        assert title == f"{h1} | Cohort portal"
    assert seen == {label: TITLES[label] for label in seen}
    assert {"cohorts.participant", "measurements.monitoredparticipant", "measurements.alert"} <= set(seen)


def test_a_raw_id_popup_keeps_its_select_title(client):
    client.force_login(UserFactory(is_superuser=True))
    html = client.get(reverse("admin:cohorts_study_changelist") + "?_popup=1&_to_field=id").content.decode()
    assert "<h1>Select study</h1>" in html
