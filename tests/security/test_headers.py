"""Security headers on every kind of page, and production cookies/HSTS as production.py sets them."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.test import override_settings
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import Study
from tests.factories import ConsentDocumentFactory, MembershipFactory, StudyFactory
from withings.services.notifications import notify_secret

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def csp_directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def assert_secure_headers(response) -> None:
    path = response.request["PATH_INFO"]
    csp = csp_directives(response)
    assert "'unsafe-inline'" not in response["Content-Security-Policy"], path
    assert "'unsafe-eval'" not in response["Content-Security-Policy"], path
    assert csp["default-src"] == ["'self'"], path
    assert csp["script-src"] == ["'self'"], path
    assert csp["style-src"][0] == "'self'", path
    # 'self', the hash of Django admin's one inline <style>, a nonce when a page asked for one.
    assert all(s.startswith(("'sha256-", "'nonce-")) for s in csp["style-src"][1:]), path
    assert csp["object-src"] == ["'none'"], path
    assert csp["frame-ancestors"] == ["'none'"], path
    assert csp["base-uri"] == ["'none'"], path
    assert response["X-Frame-Options"] == "DENY", path
    assert response["X-Content-Type-Options"] == "nosniff", path
    assert response["Referrer-Policy"] == "same-origin", path


@pytest.fixture
def open_study():
    study = StudyFactory(slug="open-one", enrollment_mode=Study.EnrollmentMode.OPEN)
    ConsentDocumentFactory(study=study, version=1)
    return study


def participant_pages(client, study) -> list:
    responses = [client.get(reverse("enroll_open", args=[study.slug]))]
    responses.append(client.post(reverse("enroll_open", args=[study.slug]), {"start": "1"}))
    responses.append(client.get(reverse("enroll_consent")))
    responses.append(client.get(reverse("enroll_invitation", args=["no-such-token"])))
    responses.append(client.get(reverse("participant_status", args=["no-such-token"])))
    responses.append(client.get(reverse("withings_connect")))
    responses.append(client.get(reverse("withings_callback")))
    return responses


def test_participant_pages_send_the_strict_policy(client, open_study):
    responses = participant_pages(client, open_study)
    assert [r.status_code for r in responses] == [200, 302, 200, 404, 404, 400, 400]
    for response in responses:
        assert_secure_headers(response)
        assert "nonce-" not in response["Content-Security-Policy"]
        html = response.content.decode()
        assert "<script" not in html
        assert "<style" not in html
        assert " style=" not in html


def test_consent_form_page_has_no_inline_code(client, open_study):
    client.post(reverse("enroll_open", args=[open_study.slug]), {"start": "1"})
    document = open_study.consent_documents.get()
    page = client.get(reverse("enroll_consent"))
    assert page.status_code == 200
    assert (
        hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest() in page.content.decode()
    )
    assert_secure_headers(page)
    assert "<script" not in page.content.decode()


def test_admin_allauth_healthz_and_webhook_send_the_headers(client):
    checked = [
        client.get("/admin/login/?next=/admin/"),
        client.get(reverse("account_login")),
        client.get(reverse("healthz")),
        client.head(reverse("withings_notify", args=[notify_secret()])),
        client.post(reverse("withings_notify", args=[notify_secret()]), {"userid": "x"}),
        client.post(reverse("withings_notify", args=["wrong"]), {"userid": "1"}),
    ]
    user = MembershipFactory().user
    client.force_login(user)
    checked += [
        client.get("/admin/"),
        client.get(reverse("admin:cohorts_participant_changelist")),
        client.get(reverse("admin:measurements_monitoredparticipant_changelist")),
        client.get(reverse("mfa_index")),
    ]
    assert [r.status_code for r in checked[:2]] == [302, 200]
    assert checked[2].status_code in (200, 503)  # healthz: 503 while no worker heartbeat
    assert [r.status_code for r in checked[3:]] == [200, 400, 404, 200, 200, 200, 200]
    for response in checked:
        assert_secure_headers(response)


def test_admin_pages_load_no_inline_script(client):
    client.force_login(MembershipFactory().user)
    for url in ("/admin/", reverse("admin:cohorts_participant_changelist")):
        html = client.get(url).content.decode()
        assert "<script>" not in html
        assert " onclick=" not in html
        assert " onload=" not in html


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "DJANGO_SECRET_KEY": "y" * 30 + "-production-secret-key-for-the-header-test",
    "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    "DJANGO_ALLOWED_HOSTS": "portal.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
}
SECURITY_SETTINGS = [
    "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "SECURE_REDIRECT_EXEMPT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_NAME", "CSRF_COOKIE_NAME", "SESSION_COOKIE_HTTPONLY", "CSRF_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY",
    "SECURE_CONTENT_TYPE_NOSNIFF", "DEBUG", "CONTENT_SECURITY_POLICY",
]  # fmt: skip


@pytest.fixture(scope="module")
def production_security_settings() -> dict:
    """The values config/settings/production.py really produces (read in a fresh process)."""
    env = {
        k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    env.update(PRODUCTION_ENV)
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        f"print(json.dumps({{k: getattr(settings, k) for k in {SECURITY_SETTINGS!r}}}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    values = json.loads(result.stdout.strip().splitlines()[-1])
    values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    values.pop("CONTENT_SECURITY_POLICY")  # holds NONCE objects: the test settings already share it
    return values


def test_production_settings_are_the_hardened_ones(production_security_settings):
    s = production_security_settings
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] is True
    assert s["SECURE_HSTS_SECONDS"] >= 31536000
    assert s["SESSION_COOKIE_SECURE"] is s["CSRF_COOKIE_SECURE"] is True
    assert s["SESSION_COOKIE_HTTPONLY"] is s["CSRF_COOKIE_HTTPONLY"] is True
    assert s["SESSION_COOKIE_SAMESITE"] == s["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert s["SESSION_COOKIE_NAME"].startswith("__Secure-")


def test_under_production_settings_https_pages_send_hsts_and_secure_cookies(
    client, open_study, production_security_settings
):
    https = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_HOST": "portal.example.org"}
    with override_settings(ALLOWED_HOSTS=["portal.example.org"], **production_security_settings):
        plain = client.get(reverse("enroll_open", args=[open_study.slug]), HTTP_HOST="portal.example.org")
        assert plain.status_code == 301
        assert plain["Location"].startswith("https://portal.example.org/")
        health = client.get(reverse("healthz"), HTTP_HOST="portal.example.org")  # exempt: probes
        assert health.status_code in (200, 503)

        page = client.get(reverse("account_login"), **https)
        assert page.status_code == 200
        hsts = page["Strict-Transport-Security"]
        assert "max-age=31536000" in hsts
        assert "includeSubDomains" in hsts
        assert "preload" in hsts
        assert_secure_headers(page)
        csrf = page.cookies[production_security_settings["CSRF_COOKIE_NAME"]]
        assert csrf["secure"]
        assert csrf["httponly"]
        assert csrf["samesite"] == "Lax"

        response = client.post(reverse("enroll_open", args=[open_study.slug]), {"start": "1"}, **https)
        assert response.status_code == 302
        session = response.cookies[production_security_settings["SESSION_COOKIE_NAME"]]
        assert session["secure"]
        assert session["httponly"]
        assert session["samesite"] == "Lax"
        assert "Strict-Transport-Security" in response
