"""Bearer secrets in URLs — status tokens (`/p/<token>/`), invitation tokens, the notification secret,
the OAuth callback's `code` and `state`, password-reset keys — never reach a log. Real servers, real
requests: the production image's gunicorn command (access and error logs) and `make run`'s dev server
through a whole enrollment and link against the mounted sandbox. The captured output is searched for
the actual values; the redaction marker is there instead."""

from __future__ import annotations

import html
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection

from cohorts import enrollment
from cohorts.models import Study
from config.redaction import MARK, redact
from tests.factories import ConsentDocumentFactory, InvitationFactory, ParticipantFactory, StudyFactory
from withings.models import WithingsConnection

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Server:
    """A server subprocess whose stdout and stderr go to one log file."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.log, self.base = log, f"http://127.0.0.1:{port}"
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "WITHINGS_", "REDIS_"))}
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env={**clean, **env}, stdout=log.open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()  # never leave a server behind (it would hold the test database)
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                requests.get(f"{self.base}/healthz/", timeout=5)
                return
            except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
                time.sleep(0.2)
        raise AssertionError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    def output(self) -> str:
        time.sleep(0.5)  # the last access lines
        self.stop()
        return self.log.read_text()


@pytest.fixture
def servers():
    """Start servers with `servers(...)`; every one is stopped after the test, passed or not."""
    started: list[Server] = []

    def start(*args) -> Server:
        started.append(Server(*args))
        return started[-1]

    yield start
    for server in started:
        server.stop()


def assert_no_secret(output: str, found: dict[str, str]) -> None:
    assert all(len(value) >= 16 for value in found.values()), found
    leaked = {name: value for name, value in found.items() if value in output}
    assert leaked == {}, output
    assert MARK in output


def dockerfile_command(port: int) -> list[str]:
    """The image's CMD (docker/Dockerfile), bound to a local port with one worker."""
    text = (ROOT / "docker" / "Dockerfile").read_text().replace("\\\n", " ")
    command = json.loads(re.search(r"^CMD (\[.*\])\s*$", text, re.M).group(1))
    command = [f"127.0.0.1:{port}" if part == "0.0.0.0:8000" else part for part in command]
    command[command.index("--workers") + 1] = "1"
    assert command[0] == "gunicorn"
    # One control socket per user: another gunicorn on this machine (a parallel test) must not clash.
    return [str(Path(sys.executable).parent / "gunicorn"), *command[1:], "--no-control-socket"]


def test_redact_replaces_each_kind_of_secret():
    line = (
        '"GET /p/AbC-123_x/consent/?code=c0de&state=st4te&next=/x HTTP/1.1" 200 '
        '"https://portal.example/enroll/invite/Inv1t3/" /withings/notify/n0t1fy/ '
        "/accounts/password/reset/key/3-k3y/ /enroll/demo/ /admin/?status=active&q=code"
    )
    assert redact(line) == (
        f'"GET /p/{MARK}/consent/?code={MARK}&state={MARK}&next=/x HTTP/1.1" 200 '
        f'"https://portal.example/enroll/invite/{MARK}/" /withings/notify/{MARK}/ '
        f"/accounts/password/reset/key/{MARK}/ /enroll/demo/ /admin/?status=active&q=code"
    )


def test_the_production_gunicorn_logs_no_bearer_secret(tmp_path, servers):
    study = StudyFactory(enrollment_mode=Study.EnrollmentMode.INVITE_ONLY)
    ConsentDocumentFactory(study=study, version=1)
    invitation = InvitationFactory(participant=ParticipantFactory(study=study, status="invited"))
    status_token = enrollment.participant_reissue_status_link(
        actor=None, participant=ParticipantFactory(study=study)
    )
    found = {
        "invitation": invitation.token,
        "status token": status_token,
        "notify secret": secrets.token_urlsafe(24),
        "code": secrets.token_hex(20),
        "state": secrets.token_urlsafe(24),
        "guessed token": secrets.token_urlsafe(24),
        "reset key": secrets.token_urlsafe(24),
    }
    port = free_port()
    server = servers(
        dockerfile_command(port),
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "WITHINGS_NOTIFY_SECRET": found["notify secret"],
        },
        tmp_path / "gunicorn.log",
        port,
    )
    base = server.base
    page = f"{base}/p/{status_token}/"
    expected = {
        f"/enroll/invite/{invitation.token}/": 200,
        f"/p/{status_token}/": 200,
        f"/p/{status_token}/consent/": 200,
        f"/p/{found['guessed token']}/": 404,
        f"/withings/callback/?code={found['code']}&state={found['state']}": 400,
        f"/accounts/password/reset/key/3-{found['reset key']}/": 200,
    }
    for path, status in expected.items():
        response = requests.get(base + path, headers={"Referer": page}, timeout=20, allow_redirects=False)
        assert response.status_code == status, path
    notify = requests.post(
        f"{base}/withings/notify/{found['notify secret']}/",
        data={"userid": "123456", "appli": "4", "startdate": "1", "enddate": "2"},
        headers={"Referer": page},
        timeout=20,
    )
    assert notify.status_code == 200
    output = server.output()
    assert_no_secret(output, found)
    # Production logs one JSON object per line, gunicorn's access and error lines included.
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    access = {(r["method"], r["path"], r["status"]) for r in records if r["logger"] == "gunicorn.access"}
    assert ("GET", f"/p/{MARK}/", 200) in access  # the access log ran
    assert ("POST", f"/withings/notify/{MARK}/", 200) in access
    assert ("GET", f"/withings/callback/?code={MARK}&state={MARK}", 400) in access
    assert all(r.get("request_id") for r in records if r["logger"] == "gunicorn.access")
    assert f"Not Found: /p/{MARK}/" in {r["message"] for r in records}  # django.request, through LOGGING


def _hidden_inputs(page: str) -> dict[str, str]:
    return {
        name: html.unescape(value)
        for name, value in re.findall(r"<input type=.hidden. name=.(\w+). value=.([^'\"]*).", page)
    }


def test_make_runs_dev_server_logs_a_whole_enrollment_without_a_bearer_secret(tmp_path, servers):
    study = StudyFactory(enrollment_mode=Study.EnrollmentMode.INVITE_ONLY)
    document = ConsentDocumentFactory(study=study, version=1)
    invitation = InvitationFactory(participant=ParticipantFactory(study=study, status="invited"))
    notify_secret = secrets.token_urlsafe(24)
    port = free_port()
    server = servers(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DATABASE_URL": database_url(),
            "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
            "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
            "WITHINGS_NOTIFY_SECRET": notify_secret,
        },
        tmp_path / "runserver.log",
        port,
    )
    base, web = server.base, requests.Session()
    assert web.get(f"{base}/enroll/invite/{invitation.token}/", timeout=20).status_code == 200
    form = web.get(f"{base}/enroll/consent/", timeout=20).text
    consent = web.post(
        f"{base}/enroll/consent/",
        data={
            "csrfmiddlewaretoken": _hidden_inputs(form)["csrfmiddlewaretoken"],
            "text_sha256": _hidden_inputs(form)["text_sha256"],
            "signature": "Sam Sample",
            "keep_data": "keep",
            **{f"agree_{i}": "on" for i in range(len(document.statement_list))},
        },
        timeout=20,
        allow_redirects=False,
    )
    assert consent.headers["Location"] == "/enroll/connect/"
    authorize = web.get(f"{base}/withings/connect/", timeout=20, allow_redirects=False).headers["Location"]
    assert authorize.startswith(f"{base}/sandbox/oauth2_user/authorize2?")
    consent_page = web.get(authorize, timeout=20).text
    fields = _hidden_inputs(consent_page)
    allowed = web.post(
        f"{base}/sandbox/oauth2_user/authorize2",
        data={**fields, "sandbox_userid": "", "decision": "allow"},
        timeout=20,
        allow_redirects=False,
    )
    callback = allowed.headers["Location"]
    code = re.search(r"[?&]code=([^&]+)", callback).group(1)
    linked = web.get(callback, timeout=60, allow_redirects=False)
    assert linked.headers["Location"] == "/withings/connected/"
    connected = web.get(f"{base}/withings/connected/", timeout=20).text
    status_token = re.search(r"/p/([A-Za-z0-9_-]{20,})/", connected).group(1)
    assert web.get(f"{base}/p/{status_token}/", timeout=20).status_code == 200
    userid = WithingsConnection.objects.get(participant=invitation.participant).withings_userid
    notify = requests.post(
        f"{base}/withings/notify/{notify_secret}/",
        data={"userid": userid, "appli": "4", "startdate": "1", "enddate": "2"},
        timeout=60,
    )
    assert notify.status_code == 200
    guessed = secrets.token_urlsafe(24)
    assert requests.get(f"{base}/p/{guessed}/", timeout=20).status_code == 404
    output = server.output()
    assert_no_secret(
        output,
        {
            "invitation": invitation.token,
            "status token": status_token,
            "notify secret": notify_secret,
            "code": code,
            "state": fields["state"],
            "guessed token": guessed,
        },
    )
    assert f'"GET /enroll/invite/{MARK}/ HTTP/1.1" 200' in output  # django.server ran
    assert f"code={MARK}&state={MARK}" in output
    assert f'"POST /withings/notify/{MARK}/ HTTP/1.1" 200' in output
    assert f"Not Found: /p/{MARK}/" in output
