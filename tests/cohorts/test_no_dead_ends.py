"""No dead links and no refusals after the fact: no "Sign up" (sign-up is closed), no "View site" (/
is a 404); every staff page names the user's scope; what a role cannot save is read-only or absent."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cohorts.models import AuditEvent, ConsentDocument, Role, Site
from tests.factories import MembershipFactory, SiteFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_sign_in_page_has_no_sign_up_link(client):
    html = client.get(reverse("account_login")).content.decode()
    assert "/accounts/signup/" not in html
    assert "sign up" not in html.lower()
    assert "Forgot your password?" in html
    assert client.get("/").status_code == 404  # why the admin must not link to "/"


def test_no_e_mail_invites_an_unknown_address_to_sign_up(client, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.org"})
    assert response.status_code == 302  # the same answer as for a known address
    assert mailoutbox == []


@pytest.fixture
def study():
    study = StudyFactory(name="Alpha")
    SiteFactory(study=study, name="North clinic", code="N")
    return study


@pytest.mark.parametrize(
    ("role", "site", "banner"),
    [
        (Role.COORDINATOR, "North clinic", "Alpha — North clinic only (Coordinator)"),
        (Role.COORDINATOR, None, "Alpha — all sites (Coordinator)"),
        (Role.DATA_MANAGER, None, "Alpha — all sites (Data manager)"),
    ],
)
def test_every_staff_page_names_the_scope_and_none_links_to_view_site(client, study, role, site, banner):
    MembershipFactory(role=Role.COORDINATOR, study__name="Bravo")  # someone else's study
    site_obj = Site.objects.get(name=site) if site else None
    user = MembershipFactory(study=study, role=role, site=site_obj).user
    client.force_login(user)
    for url in (
        reverse("admin:index"),
        reverse("admin:models"),
        reverse("admin:cohorts_participant_changelist"),
        reverse("admin:cohorts_study_change", args=[study.pk]),
        reverse("admin:measurements_monitoredparticipant_changelist"),
    ):
        html = client.get(url).content.decode()
        assert f'<span class="scope-label">Your access:</span> {banner}</p>' in html, url
        assert "Bravo" not in html, url
        assert "View site" not in html, url


def test_an_operator_sees_that_they_see_everything(client):
    client.force_login(UserFactory(is_superuser=True))
    assert "Operator — all studies and sites" in client.get(reverse("admin:index")).content.decode()


def test_a_site_coordinator_reads_study_wide_records_without_save_buttons(client, study):
    north = Site.objects.get(name="North clinic")
    document = ConsentDocument.objects.create(study=study, version=1, title="C", body="B", statements="S")
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user)
    for url in (
        reverse("admin:cohorts_study_change", args=[study.pk]),
        reverse("admin:cohorts_site_change", args=[north.pk]),
        reverse("admin:cohorts_consentdocument_change", args=[document.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert 'name="_save"' not in html, url
        assert "deletelink" not in html, url
    for name in ("site", "consentdocument"):
        add = reverse(f"admin:cohorts_{name}_add")
        assert add not in client.get(reverse(f"admin:cohorts_{name}_changelist")).content.decode()
        assert client.get(add).status_code == 403
    # Participants of their site they do add: the button is there.
    add = reverse("admin:cohorts_participant_add")
    assert add in client.get(reverse("admin:cohorts_participant_changelist")).content.decode()
    assert not AuditEvent.objects.exists()


def test_a_whole_study_coordinator_still_edits_study_wide_records(client, study):
    north = Site.objects.get(name="North clinic")
    client.force_login(MembershipFactory(study=study, role=Role.COORDINATOR).user)
    change = reverse("admin:cohorts_site_change", args=[north.pk])
    assert 'name="_save"' in client.get(change).content.decode()
    response = client.post(change, {"study": study.pk, "code": "N", "name": "North"})
    assert response.status_code == 302
    north.refresh_from_db()
    assert north.name == "North"
