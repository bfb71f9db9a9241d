"""Staff sign in through allauth with TOTP; the admin refuses staff without two-factor."""

import time

import pytest
from allauth.mfa import app_settings as mfa_settings
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.urls import reverse

from tests.factories import STAFF_PASSWORD, TOTP_SECRET, MembershipFactory, UserFactory


def current_code(secret: str = TOTP_SECRET) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // mfa_settings.TOTP_PERIOD))


@pytest.mark.django_db
def test_admin_refuses_staff_without_totp_and_sends_them_to_enroll(client):
    user = MembershipFactory(user=UserFactory(totp=False)).user
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")
    response = client.get(reverse("admin:cohorts_participant_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_activate_totp")


@pytest.mark.django_db
def test_admin_login_page_goes_through_allauth(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


@pytest.mark.django_db
def test_password_then_totp_signs_in_to_the_admin(client):
    user = MembershipFactory().user
    response = client.post(reverse("account_login"), {"login": user.email, "password": STAFF_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert client.get("/admin/").status_code == 302  # not signed in yet
    response = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert client.get("/admin/").status_code == 302
    response = client.post(reverse("mfa_authenticate"), {"code": current_code()})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_failed_logins_are_rate_limited(client):
    user = MembershipFactory().user
    limited = "Too many failed login attempts"
    for _ in range(5):
        response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
        assert limited not in response.content.decode()
    response = client.post(reverse("account_login"), {"login": user.email, "password": "wrong"})
    assert limited in response.content.decode()
    # Even the right password is refused while the limit holds: no 2FA step, no session.
    response = client.post(reverse("account_login"), {"login": user.email, "password": STAFF_PASSWORD})
    assert response.status_code == 200
    assert limited in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


@pytest.mark.django_db
def test_public_signup_is_closed(client):
    response = client.post(
        reverse("account_signup"), {"email": "x@example.org", "password1": "a long passphrase 1"}
    )
    from cohorts.models import User

    assert not User.objects.filter(email="x@example.org").exists()
    assert response.status_code in (200, 403)
