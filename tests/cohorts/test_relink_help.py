"""Re-link help: staff give a participant a fresh private link only after confirming that the old one
stops working; the new link comes as a page (QR code, copy, print) or a PDF; audited; tenant-scoped."""

from __future__ import annotations

import re
import zlib

import pytest
from django.urls import reverse

from cohorts import services
from cohorts.models import AuditEvent, Participant, Role
from tests.factories import MembershipFactory, ParticipantFactory, SiteFactory

pytestmark = pytest.mark.django_db
LINK = re.compile(r"http://[^\s\"<]+/p/([A-Za-z0-9_-]{20,})/")


def pdf_text(data: bytes) -> str:
    """The text drawing operators of a PDF: its (deflated) content streams, decompressed."""
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    chunks = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            chunks.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            continue  # an image
    return "\n".join(chunks)


@pytest.fixture
def enrolled():
    participant = ParticipantFactory(code="AL-007", study__name="Alpha")
    token = services.participant_reissue_status_link(actor=None, participant=participant)
    return participant, token


def relink_url(participant: Participant) -> str:
    return reverse("admin:cohorts_participant_relink", args=[participant.pk])


def status_code_of(client, token: str) -> int:
    return client.get(reverse("participant_status", args=[token])).status_code


def relink_audits() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="participant.status_link_reissued", actor__isnull=False))


def test_the_old_link_stops_working_only_after_confirming(client, enrolled):
    participant, old_token = enrolled
    coordinator = MembershipFactory(study=participant.study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    before = Participant.objects.get(pk=participant.pk).status_token_hash

    page = client.get(relink_url(participant) + "?next=/admin/measurements/monitoring/worklist/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "This will stop the old link working." in html
    assert 'name="confirm" value="yes"' in html
    assert "No, keep the old link" in html
    assert 'href="/admin/measurements/monitoring/worklist/"' in html  # cancel goes back where they were
    # Looking, or posting without the confirmation, changes nothing.
    assert client.post(relink_url(participant), {"format": "page"}).status_code == 200
    assert Participant.objects.get(pk=participant.pk).status_token_hash == before
    assert relink_audits() == []
    client.logout()
    assert status_code_of(client, old_token) == 200

    client.force_login(coordinator)
    response = client.post(relink_url(participant), {"confirm": "yes", "format": "page"})
    assert response.status_code == 200
    html = response.content.decode()
    new_token = LINK.search(html).group(1)
    assert new_token != old_token
    assert "<svg" in html
    assert "<?xml" not in html
    assert 'data-copy-target="handout-url"' in html
    assert "The old link no longer works." in html
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    participant.refresh_from_db()
    assert participant.status_token_hash == services.token_hash(new_token)
    [event] = relink_audits()
    assert (event.actor, event.participant, event.target) == (coordinator, participant, "AL-007")
    assert event.detail == {"old_link_revoked": True, "via": "admin"}
    client.logout()
    assert status_code_of(client, old_token) == 404
    assert status_code_of(client, new_token) == 200


def test_the_new_link_as_a_pdf(client, enrolled):
    participant, old_token = enrolled
    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    response = client.post(relink_url(participant), {"confirm": "yes", "format": "pdf"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="private-link-AL-007.pdf"'
    text = pdf_text(response.content)
    new_token = LINK.search(text).group(1)
    participant.refresh_from_db()
    assert participant.status_token_hash == services.token_hash(new_token)
    assert "Alpha: your private study page" in text
    assert "Reference: AL-007" in text
    assert old_token not in text


def test_the_service_returns_the_link_and_refuses_a_withdrawn_participant():
    participant = ParticipantFactory(code="AL-008")
    url = services.participant_relink(actor=None, participant=participant)
    token = LINK.fullmatch(url).group(1)
    participant.refresh_from_db()
    assert participant.status_token_hash == services.token_hash(token)
    assert AuditEvent.objects.get(action="participant.status_link_reissued").detail == {
        "old_link_revoked": False
    }
    withdrawn = ParticipantFactory(status=Participant.Status.WITHDRAWN)
    with pytest.raises(services.RelinkRefused, match="has withdrawn"):
        services.participant_relink(actor=None, participant=withdrawn)
    withdrawn.refresh_from_db()
    assert withdrawn.status_token_hash == ""
    assert AuditEvent.objects.filter(participant=withdrawn).count() == 0


def test_withdrawn_and_not_yet_enrolled_participants_are_pointed_elsewhere(client):
    study_participant = ParticipantFactory(status=Participant.Status.WITHDRAWN)
    client.force_login(MembershipFactory(study=study_participant.study, role=Role.COORDINATOR).user)
    monitoring = reverse("admin:measurements_monitoredparticipant_change", args=[study_participant.pk])
    assert relink_url(study_participant) not in client.get(monitoring).content.decode()
    page = client.get(relink_url(study_participant)).content.decode()
    assert "no new link is given" in page
    assert 'name="confirm"' not in page
    client.post(relink_url(study_participant), {"confirm": "yes"})
    study_participant.refresh_from_db()
    assert study_participant.status_token_hash == ""
    assert relink_audits() == []

    invited = ParticipantFactory(study=study_participant.study, status=Participant.Status.INVITED)
    page = client.get(relink_url(invited)).content.decode()
    assert "has not enrolled yet" in page
    assert f"/admin/cohorts/invitation/add/?study={invited.study_id}&amp;participant={invited.pk}" in page


@pytest.mark.parametrize("who", ["other_study", "other_site", "data_manager", "investigator"])
def test_only_coordinators_of_the_participants_study_and_site_can_relink(client, enrolled, who):
    participant, old_token = enrolled
    membership = {
        "other_study": lambda: MembershipFactory(role=Role.COORDINATOR),
        "other_site": lambda: MembershipFactory(
            study=participant.study, role=Role.COORDINATOR, site=SiteFactory(study=participant.study)
        ),
        "data_manager": lambda: MembershipFactory(study=participant.study, role=Role.DATA_MANAGER),
        "investigator": lambda: MembershipFactory(study=participant.study, role=Role.INVESTIGATOR),
    }[who]()
    client.force_login(membership.user)
    before = Participant.objects.get(pk=participant.pk).status_token_hash
    assert client.get(relink_url(participant)).status_code == 404
    assert client.post(relink_url(participant), {"confirm": "yes", "format": "pdf"}).status_code == 404
    assert Participant.objects.get(pk=participant.pk).status_token_hash == before
    assert relink_audits() == []
    client.logout()
    assert status_code_of(client, old_token) == 200


def test_the_button_shows_on_the_participant_page_and_worklist_for_coordinators_only(client, enrolled):
    participant, _token = enrolled
    monitoring = reverse("admin:measurements_monitoredparticipant_change", args=[participant.pk])
    worklist = reverse("admin:measurements_monitoring_worklist")
    button = relink_url(participant)
    client.force_login(MembershipFactory(study=participant.study, role=Role.COORDINATOR).user)
    assert button in client.get(monitoring).content.decode()
    assert button in client.get(worklist).content.decode()  # no reading yet: on today's worklist
    change = reverse("admin:cohorts_participant_change", args=[participant.pk])
    assert button in client.get(change).content.decode()
    client.force_login(MembershipFactory(study=participant.study, role=Role.INVESTIGATOR).user)
    assert participant.code in client.get(worklist).content.decode()
    for url in (monitoring, worklist, change):
        assert button not in client.get(url).content.decode(), url
