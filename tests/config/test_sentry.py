"""Optional Sentry: an error in a request reaches a (fake, local) Sentry over real HTTP, scrubbed —
no bearer path, token, cookie, contact detail or request body in the envelope."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
import sentry_sdk
from django.urls import reverse

from config.sentry import init_sentry
from withings.services.notifications import notify_secret

EMAIL = "pat.example@mail.example.org"
PHONE = "+14155550123"
BEARER = "metrics-bearer-0123456789abcdef"
SESSION = "sessioncookie0123456789abcdef"


class FakeSentry(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        FakeSentry.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_sentry():
    FakeSentry.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSentry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    init_sentry(
        dsn=f"http://publickey@127.0.0.1:{server.server_port}/42", environment="test", release="9.9.9"
    )
    try:
        yield FakeSentry.received
    finally:
        sentry_sdk.get_client().close(timeout=2)
        sentry_sdk.init()  # no DSN: reporting off again
        server.shutdown()


@pytest.mark.django_db
def test_an_error_reaches_sentry_scrubbed(client, fake_sentry):
    from tests.factories import WithingsConnectionFactory

    connection = WithingsConnectionFactory()
    client.raise_request_exception = False
    client.cookies["sessionid"] = SESSION
    boom = RuntimeError(f"inbox insert failed for {EMAIL} / {PHONE} at /p/status-token-0123456789/")
    with mock.patch("withings.services.notifications.Notification.objects.create", side_effect=boom):
        response = client.post(
            reverse("withings_notify", args=[notify_secret()]) + "?access_token=query-token-0123456789",
            {"userid": connection.withings_userid, "appli": "4", "email": EMAIL, "phone": PHONE},
            HTTP_AUTHORIZATION=f"Bearer {BEARER}",
        )
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)

    assert fake_sentry, "nothing reached the fake Sentry"
    path, envelope = fake_sentry[0]
    assert path == "/api/42/envelope/"
    text = envelope.decode("utf-8", "replace")
    assert "RuntimeError" in text
    assert '"release":"9.9.9"' in text.replace(" ", "")
    assert "[redacted]" in text
    for secret in (
        notify_secret(), EMAIL, PHONE, BEARER, SESSION, "status-token-0123456789", "query-token-0123456789",
        connection.access_token, connection.refresh_token,
    ):  # fmt: skip
        assert secret not in text, secret


def test_scrub_replaces_sensitive_keys_and_redacts_strings():
    from config.sentry import before_send

    event = {
        "request": {
            "url": "https://portal.example.org/enroll/invite/inv-0123456789/",
            "headers": {"Authorization": "Bearer abc", "X-Other": "fine"},
            "data": {"email": EMAIL},
            "cookies": {"sessionid": SESSION},
        },
        "user": {"email": EMAIL, "ip_address": "10.1.2.3"},
        "extra": {"refresh_token": "r-0123456789", "note": f"call {PHONE}", "status_code": 500},
        "breadcrumbs": {"values": [{"message": f"GET /withings/notify/{'s' * 20}/"}]},
    }
    scrubbed = before_send(event)
    assert scrubbed["request"] == {
        "url": "https://portal.example.org/enroll/invite/[redacted]/",
        "headers": {"Authorization": "[redacted]", "X-Other": "fine"},
    }
    assert "user" not in scrubbed
    assert scrubbed["extra"] == {"refresh_token": "[redacted]", "note": "call [redacted]", "status_code": 500}
    assert scrubbed["breadcrumbs"]["values"][0]["message"] == "GET /withings/notify/[redacted]/"
