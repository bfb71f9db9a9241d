"""Tokens in the admin: shown once, listed without the secret, revoked; each person sees their own."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from api.models import AccessToken
from cohorts.models import AuditEvent
from tests.api.conftest import TokenClient, make_token

pytestmark = pytest.mark.django_db
ADD = reverse("admin:api_accesstoken_add")
LIST = reverse("admin:api_accesstoken_changelist")


def test_created_in_the_admin_shown_once_and_it_works(world, client):
    client.force_login(world.full)
    assert client.get(ADD).status_code == 200
    response = client.post(ADD, {"name": "nightly R", "lifetime": "30"})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = re.search(r'value="(cpat_[^"]+)"', response.content.decode()).group(1)
    row = AccessToken.objects.get()
    assert (row.user, row.name, row.deidentified_only) == (world.full, "nightly R", False)
    assert 29 <= (row.expires_at - row.created_at).days <= 30
    for page in (client.get(LIST), client.get(reverse("admin:api_accesstoken_change", args=[row.pk]))):
        assert page.status_code == 200
        assert token not in page.content.decode()
        assert row.prefix in page.content.decode()
    assert AuditEvent.objects.filter(action="api_token.created", actor=world.full).count() == 1
    assert TokenClient(client, token).get(reverse("api:studies")).status_code == 200


def test_revoked_from_the_list(world, client):
    token = make_token(world.full)
    row = AccessToken.objects.get()
    client.force_login(world.full)
    response = client.post(LIST, {"action": "revoke", "_selected_action": [row.pk]})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1
    client.logout()
    assert TokenClient(client, token).get(reverse("api:studies")).status_code == 401


def test_each_person_sees_and_revokes_only_their_own(world, client):
    make_token(world.other_manager)
    theirs = AccessToken.objects.get()
    client.force_login(world.full)
    assert theirs.prefix not in client.get(LIST).content.decode()
    assert client.get(reverse("admin:api_accesstoken_change", args=[theirs.pk])).status_code in (302, 404)
    client.post(LIST, {"action": "revoke", "_selected_action": [theirs.pk]})
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_token.revoked").exists()


def test_staff_without_an_export_role_get_no_tokens(world, client):
    from cohorts.models import Role
    from tests.factories import MembershipFactory

    coordinator = MembershipFactory(study=world.study, role=Role.COORDINATOR).user
    client.force_login(coordinator)
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, {"name": "x", "lifetime": "30"}).status_code == 403
    assert not AccessToken.objects.exists()
