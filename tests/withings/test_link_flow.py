"""The connect step over real HTTP against the sandbox: authorize → callback → stored tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.db import connection as db
from django.urls import reverse

from cohorts.models import AuditEvent, Participant
from core.crypto import decrypt_str
from tests.factories import ParticipantFactory, WithingsAppFactory
from tests.fixtures.withings import CALLBACK, linked_connection
from withings.models import WithingsConnection

pytestmark = pytest.mark.django_db


def start(client, participant) -> str:
    """Enrollment's hand-over, then GET /withings/connect/: returns the authorize URL."""
    session = client.session
    session["enrollment_participant_id"] = participant.pk
    session.save()
    response = client.get(reverse("withings_connect"))
    assert response.status_code == 302
    return response["Location"]


def authorize(url: str, **form) -> dict[str, str]:
    """The participant at Withings: GET (auto-approve) or POST the consent form; returns the
    query Withings redirects back with."""
    if form:
        parts = urlsplit(url)
        data = {k: v[0] for k, v in parse_qs(parts.query).items()} | form
        response = requests.post(url.split("?")[0], data=data, allow_redirects=False, timeout=5)
    else:
        response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def snapshot(participant) -> tuple:
    participant.refresh_from_db()
    return (
        WithingsConnection.objects.count(),
        AuditEvent.objects.count(),
        participant.link_status,
        participant.link_status_changed_at,
    )


def test_authorize_callback_stores_encrypted_tokens(client, sandbox):
    participant = ParticipantFactory()
    url = start(client, participant)

    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == sandbox.url
    assert parts.path == "/oauth2_user/authorize2"
    query = parse_qs(parts.query)
    state = client.session["withings_oauth"]["state"]
    assert query == {
        "response_type": ["code"],
        "client_id": [sandbox.client_id],
        "redirect_uri": [CALLBACK],
        "scope": ["user.metrics"],
        "state": [state],
    }

    back = authorize(url)
    assert back["state"] == state
    response = client.get(reverse("withings_callback"), back)
    assert response.status_code == 302
    assert response["Location"] == reverse("withings_connected")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert "You're connected" in page.content.decode()

    conn = WithingsConnection.objects.get(participant=participant)
    userid = sandbox.state.users()[-1]
    assert conn.withings_userid == userid
    assert conn.app_client_id == sandbox.client_id
    assert conn.app is None
    assert conn.status == WithingsConnection.Status.ACTIVE
    assert conn.scope == "user.metrics"
    assert sandbox.state.valid_access_tokens(userid) == [conn.access_token]
    assert sandbox.state.valid_refresh_tokens(userid) == [conn.refresh_token]
    assert (conn.access_expires_at - conn.token_issued_at).total_seconds() == 10_800
    assert (conn.refresh_due_at - conn.token_issued_at).total_seconds() == 5_400
    assert sandbox.state.stats["codes_exchanged"] == 1

    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM withings_withingsconnection WHERE id = %s", [conn.pk]
        )
        raw_access, raw_refresh = cursor.fetchone()
    for raw, plain in ((raw_access, conn.access_token), (raw_refresh, conn.refresh_token)):
        assert plain not in raw
        assert raw.startswith("gAAAA")
        assert decrypt_str(raw) == plain

    participant.refresh_from_db()
    assert participant.link_status == Participant.LinkStatus.ACTIVE
    assert list(AuditEvent.objects.filter(participant=participant).values_list("action", flat=True)) == [
        "withings.linked",
        "participant.link_status",
    ]
    assert "withings_oauth" not in client.session


def test_refusal_changes_nothing(client, sandbox):
    sandbox.state.auto_approve = False
    participant = ParticipantFactory()
    before = snapshot(participant)
    back = authorize(start(client, participant), decision="deny")
    assert back["error"] == "access_denied"

    response = client.get(reverse("withings_callback"), back)

    assert response.status_code == 200
    html = response.content.decode()
    assert "You chose not to share your readings" in html
    assert f'href="{reverse("withings_connect")}"' in html
    assert snapshot(participant) == before
    assert sandbox.state.stats.get("codes_exchanged", 0) == 0


def test_state_mismatch_changes_nothing_and_keeps_the_real_state(client, sandbox):
    participant = ParticipantFactory()
    before = snapshot(participant)
    back = authorize(start(client, participant))

    response = client.get(reverse("withings_callback"), {**back, "state": "forged"})

    assert response.status_code == 400
    assert "different browser" in response.content.decode()
    assert snapshot(participant) == before
    assert sandbox.state.stats.get("codes_exchanged", 0) == 0
    # The genuine redirect still works afterwards.
    assert client.get(reverse("withings_callback"), back).status_code == 302


def test_callback_from_another_session_is_refused(client, sandbox):
    from django.test import Client

    participant = ParticipantFactory()
    before = snapshot(participant)
    back = authorize(start(client, participant))

    response = Client().get(reverse("withings_callback"), back)

    assert response.status_code == 400
    assert snapshot(participant) == before


def test_expired_code_changes_nothing(client, sandbox):
    participant = ParticipantFactory()
    before = snapshot(participant)
    back = authorize(start(client, participant))
    sandbox.clock.advance(31)

    response = client.get(reverse("withings_callback"), back)

    assert response.status_code == 400
    assert "took too long" in response.content.decode()
    assert snapshot(participant) == before


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [("http5xx", 503, "not answering"), ("522", 503, "not answering"), ("601", 503, "not answering")],
)
def test_upstream_errors_change_nothing(client, sandbox, kind, status, text):
    participant = ParticipantFactory()
    before = snapshot(participant)
    back = authorize(start(client, participant))
    sandbox.state.set_fault(kind, endpoint="oauth2", wait_seconds=1)

    response = client.get(reverse("withings_callback"), back)

    assert response.status_code == status
    assert text in response.content.decode()
    assert snapshot(participant) == before


def test_upstream_error_parameter_shows_error_page(client, sandbox):
    participant = ParticipantFactory()
    before = snapshot(participant)
    start(client, participant)
    state = client.session["withings_oauth"]["state"]

    response = client.get(reverse("withings_callback"), {"error": "server_error", "state": state})

    assert response.status_code == 502
    assert "Something went wrong" in response.content.decode()
    assert snapshot(participant) == before


def test_connect_without_enrollment_session(client, sandbox):
    response = client.get(reverse("withings_connect"))
    assert response.status_code == 400
    assert "open the link from your invitation" in response.content.decode()
    assert client.get(reverse("withings_connected")).status_code == 400


def test_account_linked_to_another_participant_is_refused(client, sandbox):
    other = linked_connection(sandbox)
    participant = ParticipantFactory()
    before = snapshot(participant)
    sandbox.state.auto_approve = False
    back = authorize(start(client, participant), decision="allow", sandbox_userid=other.withings_userid)

    response = client.get(reverse("withings_callback"), back)

    assert response.status_code == 409
    assert "already linked to another participant" in response.content.decode()
    assert snapshot(participant) == before


def test_relink_after_needs_reauth(client, sandbox):
    conn = linked_connection(sandbox, status=WithingsConnection.Status.NEEDS_REAUTH)
    participant = conn.participant
    Participant.objects.filter(pk=participant.pk).update(link_status="needs_reauth")
    sandbox.state.auto_approve = False
    back = authorize(start(client, participant), decision="allow", sandbox_userid=conn.withings_userid)

    assert client.get(reverse("withings_callback"), back).status_code == 302

    conn.refresh_from_db()
    participant.refresh_from_db()
    assert conn.status == WithingsConnection.Status.ACTIVE
    assert participant.link_status == Participant.LinkStatus.ACTIVE
    assert conn.refresh_token in sandbox.state.valid_refresh_tokens(conn.withings_userid)


def test_study_with_its_own_withings_app(client, sandbox):
    participant = ParticipantFactory()
    app = WithingsAppFactory(
        study=participant.study, client_id="institution-app", client_secret="inst-secret"
    )
    sandbox.state.register_client("institution-app", "inst-secret", [CALLBACK])

    url = start(client, participant)
    assert parse_qs(urlsplit(url).query)["client_id"] == ["institution-app"]
    assert client.get(reverse("withings_callback"), authorize(url)).status_code == 302

    conn = WithingsConnection.objects.get(participant=participant)
    assert conn.app == app
    assert conn.app_client_id == "institution-app"
