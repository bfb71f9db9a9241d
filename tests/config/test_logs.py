"""Log lines: JSON in production, with request/user/study/task ids, and nothing secret or personal."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.celery_app import app as celery_app
from config.logs import ContextFilter, JsonFormatter, TextFormatter, bind, reset
from config.redaction import MARK, RedactSecrets
from tests.factories import UserFactory

ROOT = Path(__file__).resolve().parents[2]


@celery_app.task(name="tests.logs.say")
def say(text: str) -> None:
    logging.getLogger("tests.logs").warning("task says %s", text)


@pytest.fixture
def json_lines():
    """What the production console handler prints, for everything logged meanwhile."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_json_line_carries_the_context_and_no_contact_detail_or_bearer_path(json_lines):
    token = bind(request_id="req-12345678", user_id=7, study="demo")
    try:
        logging.getLogger("tests.logs").warning(
            "texted %s, mailed %s, link %s", "+14155550123", "pat@example.org", "/p/s3cr3t-status-token/"
        )
    finally:
        reset(token)
    (line,) = json_lines()
    assert line["level"] == "WARNING"
    assert line["logger"] == "tests.logs"
    assert (line["request_id"], line["user_id"], line["study"]) == ("req-12345678", 7, "demo")
    assert line["message"] == f"texted {MARK}, mailed {MARK}, link /p/{MARK}/"
    assert line["time"].endswith("+00:00")


def test_a_traceback_is_redacted_too():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
    try:
        raise ValueError("could not reach pat@example.org at /enroll/invite/inv-token-123/")
    except ValueError:
        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert "ValueError" in line["exception"]
    assert "pat@example.org" not in line["exception"]
    assert "inv-token-123" not in line["exception"]


@pytest.mark.django_db
def test_requests_get_an_id_the_user_and_the_study_of_the_url(client, json_lines):
    response = client.get("/enroll/no-such-study/", HTTP_X_REQUEST_ID="proxy-given-id-0001")
    assert response.status_code == 404
    assert response["X-Request-ID"] == "proxy-given-id-0001"
    user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(user)
    response = client.get("/admin/no/such/page/", HTTP_X_REQUEST_ID="bad id\nwith newline")
    new_id = response["X-Request-ID"]
    assert len(new_id) == 32
    assert "\n" not in new_id
    lines = [line for line in json_lines() if line["logger"] == "django.request"]
    assert [(line.get("request_id"), line.get("study"), line.get("user_id")) for line in lines] == [
        ("proxy-given-id-0001", "no-such-study", None),
        (new_id, None, user.pk),
    ]


def test_a_task_s_lines_carry_its_id_and_name(json_lines):
    result = say.delay("hello")
    (line,) = [line for line in json_lines() if line["logger"] == "tests.logs"]
    assert line["task_id"] == result.id
    assert line["task"] == "tests.logs.say"
    assert line["message"] == "task says hello"
    after = logging.LogRecord("x", logging.INFO, __file__, 1, "after", (), None)
    ContextFilter().filter(after)
    assert after.task_id is None  # the context ends with the task


def test_text_format_shows_the_request_id():
    formatter = TextFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", (), None)
    token = bind(request_id="abcdef123456")
    try:
        assert formatter.format(record) == "INFO hello [abcdef123456]"
    finally:
        reset(token)
    assert formatter.format(record) == "INFO hello"


def test_production_logs_json_and_development_text():
    code = "from django.conf import settings; print(settings.LOGGING['handlers']['console']['formatter'])"
    base = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"}
    production = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1vbmx5LWtleS10ZXN0LW9ubHkta2V5LXRlc3Q=",
        "DJANGO_ALLOWED_HOSTS": "portal.example.org",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/portal",
        "REDIS_URL": "redis://127.0.0.1:6379/1",
    }

    def formatter(env: dict[str, str]) -> str:
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return result.stdout.strip()

    assert formatter(production) == "json"
    assert formatter({**production, "LOG_FORMAT": "text"}) == "text"
    assert formatter({"DJANGO_SETTINGS_MODULE": "config.settings.local"}) == "text"
    bad = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT, env={**base, **production, "LOG_FORMAT": "xml"}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode != 0
    assert "LOG_FORMAT must be json or text" in bad.stderr
