"""Tokens: stored hashed, expiring, revocable, scoped to the holder's studies; every call audited."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.urls import reverse
from django.utils.timezone import now

from api.models import AccessToken
from api.services import access_token_revoke
from cohorts.models import AuditEvent, StudyMembership
from tests.api.conftest import TokenClient, make_token

pytestmark = pytest.mark.django_db
STUDIES = reverse("api:studies")


def test_token_is_stored_as_its_sha256_only(world):
    token = make_token(world.full)
    row = AccessToken.objects.get()
    assert token.startswith("cpat_")
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [str(v) for v in AccessToken.objects.values_list().get()]
    assert not any(token in value for value in stored)
    assert not any(token in str(e.detail) + e.target for e in AuditEvent.objects.all())


def test_studies_lists_only_the_holders_studies(world, as_user):
    response = as_user(world.full).get(STUDIES)
    assert response.status_code == 200
    assert [s["slug"] for s in response.json()["results"]] == ["alpha"]
    assert response.json()["results"][0]["sites"] == ["north", "south"]
    assert response.json()["results"][0]["export_rights"] == "full"
    event = AuditEvent.objects.get(action="api.call")
    assert (event.actor, event.target, event.detail["status"]) == (world.full, STUDIES, 200)


def test_another_study_is_404_and_nothing_is_audited_as_success(world, as_user):
    api = as_user(world.full)
    for path in (
        reverse("api:readings", args=["bravo"]),
        reverse("api:readings", args=["no-such-study"]),
    ):
        response = api.get(path)
        assert response.status_code == 404
        assert "B-SECRET" not in response.content.decode()
    response = api.post(reverse("api:exports", args=["bravo"]), {"format": "csv"})
    assert response.status_code == 404
    events = list(AuditEvent.objects.filter(action="api.call"))
    assert [e.detail["status"] for e in events] == [404, 404, 404]
    assert all(e.study is None for e in events)
    assert not AuditEvent.objects.filter(study=world.other).exists()
    assert not AuditEvent.objects.filter(action__startswith="export.").exists()


def test_losing_the_role_closes_the_token_at_once(world, as_user):
    api = as_user(world.full)
    assert api.get(reverse("api:readings", args=["alpha"])).status_code == 200
    StudyMembership.objects.filter(user=world.full).delete()
    assert api.get(reverse("api:readings", args=["alpha"])).status_code == 404


@pytest.mark.parametrize("state", ["expired", "revoked"])
def test_expired_or_revoked_token_is_401(world, client, state):
    token = make_token(world.full)
    row = AccessToken.objects.get()
    if state == "expired":
        AccessToken.objects.filter(pk=row.pk).update(expires_at=now() - dt.timedelta(seconds=1))
    else:
        access_token_revoke(actor=world.full, token=row)
    response = TokenClient(client, token).get(reverse("api:readings", args=["alpha"]))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "A-1" not in response.content.decode()
    assert not AuditEvent.objects.filter(action="api.call").exists()
    refused = AuditEvent.objects.get(action="api.refused")
    assert (refused.actor, refused.detail["reason"], refused.detail["status"]) == (world.full, state, 401)


@pytest.mark.parametrize("header", ["", "Bearer cpat_not-a-real-token", "Basic dXNlcjpwYXNz", "Bearer "])
def test_missing_or_unknown_token_is_401(world, client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get(STUDIES, **extra)
    assert response.status_code == 401
    assert not AuditEvent.objects.filter(action__startswith="api.").exists()


def test_a_signed_in_admin_session_is_not_enough(world, client):
    client.force_login(world.full)
    assert client.get(STUDIES).status_code == 401


def test_rate_limited_per_token(world, as_user, settings):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    api = as_user(world.full)
    assert [api.get(STUDIES).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert api.get(STUDIES)["Retry-After"] == "60"
    other = as_user(world.full)  # another token of the same person has its own budget
    assert other.get(STUDIES).status_code == 200


def test_failed_authentications_are_rate_limited_per_address(world, client):
    codes = [client.get(STUDIES, HTTP_AUTHORIZATION="Bearer cpat_guess").status_code for _ in range(31)]
    assert codes == [401] * 30 + [429]
