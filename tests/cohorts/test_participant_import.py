"""Bulk participant import in the admin (django-import-export's preview, then confirm): all or nothing,
errors named by row, scoped to the coordinator's study and site, contact details encrypted, and the
invitations of the import as a printable sheet."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.db import connection
from django.urls import reverse

from cohorts.models import AuditEvent, Invitation, Participant, ParticipantContact, Role
from tests.factories import MembershipFactory, SiteFactory, StudyFactory
from tests.pdf_text import pdf_text

pytestmark = pytest.mark.django_db

IMPORT = "admin:cohorts_participant_import"
PROCESS = "admin:cohorts_participant_process_import"
HEADER = "code,site,timezone,start_date,email,phone,reminders_opt_in,language,invitation_days\n"


@pytest.fixture
def study():
    study = StudyFactory(slug="alpha", name="Alpha Study", default_timezone="Europe/London")
    SiteFactory(study=study, code="north")
    SiteFactory(study=study, code="south")
    return study


@pytest.fixture
def coordinator(study):
    return MembershipFactory(study=study, role=Role.COORDINATOR).user


def sheet(lines: list[str]) -> io.BytesIO:
    upload = io.BytesIO((HEADER + "".join(line + "\n" for line in lines)).encode())
    upload.name = "participants.csv"
    return upload


def good_rows(n: int) -> list[str]:
    rows = []
    for i in range(1, n + 1):
        site = "north" if i % 2 else "south"
        contact = f"p{i}@example.org,,yes" if i % 5 == 0 else ",,"
        rows.append(f"IMP-{i:04d},{site},,2026-01-{1 + i % 28:02d},{contact},,")
    return rows


def upload(client, study, lines):
    return client.post(
        reverse(IMPORT), {"study": study.pk, "format": "0", "resource": "0", "import_file": sheet(lines)}
    )


def confirm(client, preview):
    form = preview.context["confirm_form"]
    return client.post(reverse(PROCESS), {name: form.initial[name] for name in form.initial})


def test_a_500_row_sheet_is_previewed_then_imported_with_invitations_and_a_printable_sheet(
    client, study, coordinator
):
    client.force_login(coordinator)

    preview = upload(client, study, good_rows(500))

    assert preview.status_code == 200
    result = preview.context["result"]
    assert not result.has_errors()
    assert not result.has_validation_errors()
    assert result.totals["new"] == 500
    assert preview.context["confirm_form"] is not None
    page = preview.content.decode()
    assert "IMP-0500" in page
    assert "p5@example.org" not in page  # the preview says a contact was given, never what it is
    # What the coordinator checks before confirming: row 10 (even → south; a contact, opted in).
    shown = [re.sub(r"<[^>]+>", "", cell) for cell in result.rows[9].diff]
    assert shown[0] == "IMP-0010"
    assert (shown[1], shown[4], shown[5], shown[6], shown[7], shown[8]) == (
        "south", "given", "", "yes", "English", "14",
    )  # fmt: skip
    row_11 = [re.sub(r"<[^>]+>", "", cell) for cell in result.rows[10].diff]
    assert (row_11[1], row_11[4], row_11[6]) == ("north", "", "no")
    # A preview writes nothing.
    assert not Participant.objects.filter(study=study).exists()
    assert not AuditEvent.objects.filter(study=study).exists()

    done = confirm(client, preview)

    assert done.status_code == 302
    participants = Participant.objects.filter(study=study)
    assert participants.count() == 500
    assert Invitation.objects.filter(study=study, used_at__isnull=True).count() == 500
    p10 = participants.get(code="IMP-0010")
    # Row 10: even → south, start date 2026-01-11, no time zone given → the study's, contact given.
    assert (p10.site.code, str(p10.start_date), p10.timezone, p10.status) == (
        "south", "2026-01-11", "Europe/London", "invited",
    )  # fmt: skip
    assert ParticipantContact.objects.filter(participant__study=study).count() == 100  # every 5th row
    contact = ParticipantContact.objects.get(participant=p10)
    assert (contact.email, contact.reminders_opt_in, contact.preferred_channel) == (
        "p10@example.org",
        True,
        "email",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT email FROM cohorts_participantcontact WHERE id = %s", [contact.pk])
        assert "p10@example.org" not in cursor.fetchone()[0]
    event = AuditEvent.objects.get(action="participants.imported")
    assert event.detail["count"] == 500
    assert done["Location"] == reverse("admin:cohorts_participant_import_sheet", args=[event.pk])

    sheet_page = client.get(done["Location"])
    assert sheet_page.status_code == 200
    assert sheet_page.content.decode().count("QR code and link") == 500
    pdf = client.get(reverse("admin:cohorts_participant_import_sheet_pdf", args=[event.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert b"/Count 500\n" in pdf.content  # one handout page per participant
    assert AuditEvent.objects.filter(action="invitation.sheet_downloaded").count() == 1


def test_one_bad_row_imports_nothing_and_the_row_is_named(client, study, coordinator):
    client.force_login(coordinator)
    rows = good_rows(10)
    rows[6] = "IMP-0007,nowhere,,2026-01-08,,,,,"  # data row 7

    preview = upload(client, study, rows)

    assert preview.status_code == 200
    result = preview.context["result"]
    assert [row.number for row in result.invalid_rows] == [7]
    assert "The study has no site “nowhere” (its sites: north, south)." in preview.content.decode()
    assert preview.context.get("confirm_form") is None
    assert not Participant.objects.filter(study=study).exists()
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("IMP-0001,north,Mars/Olympus,,,,,,", "Mars/Olympus is not a known IANA time zone."),
        ("IMP-0001,north,,,,+44 12,,,", "This number is not valid."),
        ("IMP-0001,north,,,,,maybe,,", "“maybe” is not yes or no."),
        ("IMP-0001,north,,,,,yes,,", "Give an e-mail address or a mobile number to receive reminders."),
        ("IMP-0001,north,,,,,,,400", "Give a number of days from 1 to 90."),
        ("bad code!,north,,,,,,,", "Letters, digits and '-' only."),
    ],
)
def test_each_kind_of_bad_row_is_explained_and_nothing_is_imported(client, study, coordinator, line, message):
    client.force_login(coordinator)
    preview = upload(client, study, ["IMP-0002,north,,,,,,,", line])
    assert [row.number for row in preview.context["result"].invalid_rows] == [2]
    assert message in html.unescape(preview.content.decode())
    assert not Participant.objects.exists()


def test_a_code_already_in_the_study_or_twice_in_the_sheet_is_refused(client, study, coordinator):
    client.force_login(coordinator)
    preview = upload(
        client, study, ["IMP-0001,north,,,,,,,", "IMP-0002,north,,,,,,,", "IMP-0001,south,,,,,,,"]
    )
    assert [row.number for row in preview.context["result"].invalid_rows] == [3]
    assert not Participant.objects.exists()


def test_a_site_coordinator_imports_only_at_their_site(client, study):
    north = study.sites.get(code="north")
    user = MembershipFactory(study=study, role=Role.COORDINATOR, site=north).user
    client.force_login(user)

    preview = upload(client, study, ["IMP-0001,north,,,,,,,", "IMP-0002,south,,,,,,,", "IMP-0003,,,,,,,,"])

    assert [row.number for row in preview.context["result"].invalid_rows] == [2, 3]
    assert "You cannot add participants at the site “south”." in preview.content.decode()
    assert not Participant.objects.exists()


@pytest.mark.parametrize("role", [Role.DATA_MANAGER, Role.INVESTIGATOR])
def test_a_read_only_role_cannot_import(client, study, role):
    client.force_login(MembershipFactory(study=study, role=role).user)
    assert client.get(reverse(IMPORT)).status_code == 403
    assert upload(client, study, good_rows(3)).status_code == 403
    assert not Participant.objects.exists()


def test_another_studys_coordinator_cannot_import_into_this_study(client, study):
    other = StudyFactory(slug="bravo")
    client.force_login(MembershipFactory(study=other, role=Role.COORDINATOR).user)

    preview = upload(client, study, good_rows(3))

    assert preview.status_code == 200
    assert "study" in preview.context["form"].errors
    assert not Participant.objects.exists()


def test_another_studys_coordinator_cannot_open_the_sheet(client, study, coordinator):
    client.force_login(coordinator)
    done = confirm(client, upload(client, study, good_rows(2)))
    event = AuditEvent.objects.get(action="participants.imported")
    own = client.get(reverse("admin:cohorts_participant_import_sheet_pdf", args=[event.pk]))
    text = pdf_text(own.content)
    for invitation in Invitation.objects.filter(study=study):
        assert f"/enroll/invite/{invitation.token}/" in text
    assert "Reference: IMP-0002" in text
    client.force_login(MembershipFactory(study=StudyFactory(), role=Role.COORDINATOR).user)

    assert client.get(done["Location"]).status_code == 404
    assert (
        client.get(reverse("admin:cohorts_participant_import_sheet_pdf", args=[event.pk])).status_code == 404
    )
    assert AuditEvent.objects.filter(action="invitation.sheet_downloaded").count() == 1  # the owner's only


def test_a_sheet_that_expired_between_preview_and_confirm_imports_nothing(client, study, coordinator):
    from django.core.cache import cache

    client.force_login(coordinator)
    preview = upload(client, study, good_rows(2))
    cache.clear()  # the hour is over

    response = confirm(client, preview)

    assert response.status_code == 302
    assert response["Location"] == reverse(IMPORT)
    assert not Participant.objects.exists()


def test_the_waiting_sheet_is_encrypted_in_the_cache(client, study, coordinator):
    from django.core.cache import cache

    from cohorts.participant_import import EncryptedCacheStorage

    client.force_login(coordinator)
    preview = upload(client, study, ["IMP-0001,north,,,secret-person@example.org,,,,"])
    name = preview.context["confirm_form"].initial["import_file_name"]
    stored = cache.get(EncryptedCacheStorage.CACHE_PREFIX + name)
    assert stored
    assert "secret-person@example.org" not in stored
    assert "IMP-0001" not in stored


def test_the_import_button_shows_for_coordinators_only(client, study, coordinator):
    changelist = reverse("admin:cohorts_participant_changelist")
    client.force_login(coordinator)
    assert reverse(IMPORT) in client.get(changelist).content.decode()
    client.force_login(MembershipFactory(study=study, role=Role.DATA_MANAGER).user)
    page = client.get(changelist)
    assert page.status_code == 200
    assert reverse(IMPORT) not in page.content.decode()
