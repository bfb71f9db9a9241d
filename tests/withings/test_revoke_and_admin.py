"""Withdrawal's signed revoke, and the read-only, tenant-scoped admin that never shows tokens."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cohorts.models import Participant, Role
from tests.factories import MembershipFactory, ParticipantFactory, UserFactory, WithingsConnectionFactory
from tests.fixtures.withings import linked_connection
from withings.errors import WithingsTerminalError
from withings.models import WithingsConnection
from withings.services.link import connection_revoke_grant

pytestmark = pytest.mark.django_db


def test_signed_revoke_wipes_tokens(sandbox):
    conn = linked_connection(sandbox)

    assert connection_revoke_grant(connection_id=conn.pk, reason="withdrawal") is True

    assert sandbox.state.is_revoked(conn.withings_userid, sandbox.client_id)
    assert sandbox.state.stats["signature.getnonce"] == 1
    conn.refresh_from_db()
    assert (conn.status, conn.access_token, conn.refresh_token) == ("revoked", "", "")
    assert Participant.objects.get(pk=conn.participant_id).link_status == "revoked"
    assert connection_revoke_grant(connection_id=conn.pk) is False


def test_failed_revoke_changes_nothing(sandbox, settings):
    conn = linked_connection(sandbox)
    settings.WITHINGS_CLIENT_SECRET = "wrong-secret"
    with pytest.raises(WithingsTerminalError):
        connection_revoke_grant(connection_id=conn.pk)
    conn.refresh_from_db()
    assert conn.status == WithingsConnection.Status.ACTIVE
    assert not sandbox.state.is_revoked(conn.withings_userid)


def test_admin_lists_connections_of_own_study_without_tokens(client):
    mine = WithingsConnectionFactory(
        access_token="ACCESS-SHOULD-NOT-SHOW", refresh_token="REFRESH-SHOULD-NOT-SHOW"
    )
    other = WithingsConnectionFactory(participant=ParticipantFactory(code="OTHER-STUDY-1"))
    user = MembershipFactory(study=mine.participant.study, role=Role.COORDINATOR).user
    client.force_login(user)

    listing = client.get(reverse("admin:withings_withingsconnection_changelist"))
    detail = client.get(reverse("admin:withings_withingsconnection_change", args=[mine.pk]))
    hidden = client.get(reverse("admin:withings_withingsconnection_change", args=[other.pk]))

    assert listing.status_code == 200
    assert mine.participant.code in listing.content.decode()
    assert "OTHER-STUDY-1" not in listing.content.decode()
    assert detail.status_code == 200
    for page in (listing, detail):
        html = page.content.decode()
        assert "SHOULD-NOT-SHOW" not in html
        assert "gAAAA" not in html
    assert hidden.status_code == 302  # not found in the scoped queryset → back to the index
    assert 'name="_save"' not in detail.content.decode()


def test_admin_app_credentials_are_for_operators_only(client):
    client.force_login(MembershipFactory(role=Role.COORDINATOR).user)
    assert client.get(reverse("admin:withings_withingsapp_changelist")).status_code == 403
    client.force_login(UserFactory(is_superuser=True))
    assert client.get(reverse("admin:withings_withingsapp_add")).status_code == 200
