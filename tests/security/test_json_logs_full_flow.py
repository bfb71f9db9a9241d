"""The production log format through a whole flow — enroll with contact details → link at the
Withings sandbox → webhook → sync → export → metrics scrape — with every logger of ours at DEBUG:
each line is one JSON object, request lines carry their request id, task lines their task id, and
no token, secret, bearer path, OAuth code/state or contact detail appears anywhere."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import Role, Study
from config.logs import ContextFilter, JsonFormatter
from config.redaction import RedactSecrets
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_run
from measurements.models import BloodPressureReading
from tests.factories import ConsentDocumentFactory, MembershipFactory, SiteFactory, StudyFactory
from withings.models import WithingsConnection
from withings.sandbox import bp_group
from withings.services.notifications import notify_secret
from withings.services.sync import connection_backfill_step

pytestmark = pytest.mark.django_db
LOGGERS = ("", "django", "django.request", "cohorts", "withings", "measurements", "messaging", "config",
           "core", "celery", "urllib3", "requests", "allauth")  # fmt: skip
EMAIL = "pat.jsonlog@mail.example.org"
PHONE = "+14155550177"
METRICS_TOKEN = "json-flow-metrics-token-0123456789"


@pytest.fixture
def production_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_logs_of_a_full_flow_are_json_and_hold_no_secret(
    client, sandbox, settings, tmp_path, django_capture_on_commit_callbacks, production_lines
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.METRICS_TOKEN = METRICS_TOKEN
    study = StudyFactory(slug="jsonlogs", name="JSON logs", enrollment_mode=Study.EnrollmentMode.OPEN)
    SiteFactory(study=study)
    ConsentDocumentFactory(study=study, version=1)
    data_manager = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    pages: list[str] = []

    # Enroll with contact details, link at the sandbox.
    assert client.post(reverse("enroll_open", args=[study.slug]), {"start": "1"}).status_code == 302
    document = study.consent_documents.get()
    digest = hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest()
    form = {"text_sha256": digest, "signature": "Pat Example", "keep_data": "keep", "email": EMAIL,
            "phone": PHONE, "reminders_opt_in": "on", "language": "en"}  # fmt: skip
    form |= {f"agree_{i}": "on" for i in range(len(document.statement_list))}
    consent = client.post(reverse("enroll_consent"), form)
    assert consent.status_code == 302, consent.content.decode()[:2000]
    pages.append(client.get(reverse("enroll_connect")).content.decode())
    authorize = client.get(reverse("withings_connect"))["Location"]
    back = requests.get(authorize, allow_redirects=False, timeout=5).headers["Location"]
    oauth = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(back.replace("http://testserver", "")).status_code == 302
    pages.append(client.get(reverse("withings_connected")).content.decode())
    connection = WithingsConnection.objects.get()
    tokens = {connection.access_token, connection.refresh_token}

    # Webhook → sync.
    sandbox.state.cuff_sync(connection.withings_userid, [bp_group(131, 84, 66, date=int(time.time()) - 60)])
    while connection_backfill_step(connection_id=connection.pk).more:
        pass
    with django_capture_on_commit_callbacks(execute=True):
        notify = client.post(
            reverse("withings_notify", args=[notify_secret()]),
            {"userid": connection.withings_userid, "appli": "4", "startdate": "1", "enddate": "2"},
        )
    assert notify.status_code == 200
    assert BloodPressureReading.objects.filter(participant=connection.participant).exists()
    connection.refresh_from_db()
    tokens |= {connection.access_token, connection.refresh_token}

    # Export, then a metrics scrape.
    job = export_job_create(actor=data_manager, study=study, fmt="csv", filters=ExportFilters(), run=False)
    export_job_run(job_id=job.pk)
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}").status_code == 200

    output = production_lines.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]  # every line is one JSON object
    assert len(lines) > 20, output
    assert any(line.get("request_id") for line in lines)
    assert any(line.get("task_id") and line.get("task") for line in lines), "no task line"
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    # Not vacuous: secrets did reach the loggers (urllib3 logs the authorize URL) and were masked.
    assert "state=[redacted]" in output

    status_tokens = {m for page in pages for m in re.findall(r"/p/([A-Za-z0-9_-]{16,})/", page)}
    secrets = {
        "e-mail": EMAIL, "phone": PHONE, "phone digits": PHONE[1:], "OAuth code": oauth["code"],
        "OAuth state": oauth["state"], "notify secret": notify_secret(),
        "client secret": sandbox.client_secret,
        "metrics token": METRICS_TOKEN, "SECRET_KEY": settings.SECRET_KEY,
        **{f"token {i}": t for i, t in enumerate(sorted(tokens))},
        **{f"status token {i}": t for i, t in enumerate(sorted(status_tokens))},
        **{f"FIELD_ENCRYPTION_KEYS[{i}]": k for i, k in enumerate(settings.FIELD_ENCRYPTION_KEYS)},
    }  # fmt: skip
    assert status_tokens, "the participant's status link was not shown"
    assert all(len(value) >= 10 for value in secrets.values())
    for label, value in secrets.items():
        assert value not in output, f"{label} in the logs"
