"""One setting, PORTAL_TRUSTED_PROXY_COUNT, decides the client address of every rate limit: staff
sign-in (allauth) and the participant pages. Behind the proxy, one client's failed logins do not lock
out the others; without it, X-Forwarded-For is ignored (it cannot be spoofed to dodge a limit)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import STAFF_PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db
PROXY = "10.0.0.2"
LIMITED = "Too many failed login attempts"


def from_client(address: str) -> Client:
    """A browser at `address` reaching the portal through the TLS proxy at PROXY."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=address)


def fail_logins(client: Client, times: int) -> str:
    content = ""
    for i in range(times):
        response = client.post(reverse("account_login"), {"login": f"guess{i}@example.org", "password": "x"})
        content = response.content.decode()
    return content


def staff_signs_in(client: Client, email: str) -> bool:
    response = client.post(reverse("account_login"), {"login": email, "password": STAFF_PASSWORD})
    if response.status_code == 302:
        assert response["Location"] == reverse("mfa_authenticate")
        return True
    assert LIMITED in response.content.decode()
    return False


def test_behind_the_proxy_one_clients_failed_logins_do_not_lock_out_other_staff(settings):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    staff = MembershipFactory().user
    attacker = from_client("203.0.113.9")
    assert LIMITED in fail_logins(attacker, 11)  # the attacker's own address is limited
    assert staff_signs_in(from_client("198.51.100.7"), staff.email)
    assert not staff_signs_in(from_client("203.0.113.9"), staff.email)


def test_without_a_trusted_proxy_x_forwarded_for_is_ignored(settings):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 0
    staff = MembershipFactory().user
    for i in range(11):  # a new forged address on every attempt
        fail_logins(from_client(f"203.0.113.{i}"), 1)
    assert not staff_signs_in(from_client("198.51.100.7"), staff.email)


def test_the_participant_pages_use_the_same_address(settings, client):
    settings.PORTAL_TRUSTED_PROXY_COUNT = 1
    guesser = from_client("203.0.113.9")
    for i in range(20):
        assert guesser.get(reverse("participant_status", args=[f"guess-{i}"])).status_code == 404
    assert guesser.get(reverse("participant_status", args=["guess-x"])).status_code == 429
    assert from_client("198.51.100.7").get(reverse("participant_status", args=["x"])).status_code == 404
