"""Enroll → link → sync → notification → refresh → export → download → admin, against the real
sandbox over HTTP with every logger at DEBUG: no token, client secret, encryption key, SECRET_KEY or
TOTP secret in any log line, response (error pages included), e-mail, audit event or export file."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
import zipfile
from unittest import mock

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from cohorts import enrollment
from cohorts.models import AuditEvent, Role, Study
from measurements.exports.rows import ExportFilters
from measurements.exports.services import export_job_create, export_job_run
from measurements.models import BloodPressureReading
from tests.factories import (
    TOTP_SECRET,
    ConsentDocumentFactory,
    MembershipFactory,
    SiteFactory,
    StudyFactory,
    UserFactory,
    WithingsAppFactory,
)
from withings.models import WithingsConnection
from withings.sandbox import bp_group
from withings.services.notifications import notify_secret
from withings.services.sync import connection_backfill_step
from withings.services.tokens import connection_refresh

pytestmark = pytest.mark.django_db
LOGGERS = ("", "django", "django.request", "django.db.backends", "cohorts", "withings", "measurements",
           "celery", "urllib3", "requests", "allauth")  # fmt: skip
# requests-oauthlib logs token bodies at DEBUG: settings pin it (and oauthlib) to WARNING, whatever
# LOG_LEVEL says. The test keeps that configuration and checks it holds.
PINNED = ("requests_oauthlib", "oauthlib")


class Recorder:
    """Every response body and header the flow produced."""

    def __init__(self, client) -> None:
        self.client = client
        self.seen: list[str] = []

    def _keep(self, response):
        if getattr(response, "streaming", False):
            body = b"".join(response.streaming_content)
        else:
            body = response.content
        self.seen.append(body.decode("utf-8", "replace"))
        self.seen.append("\n".join(f"{k}: {v}" for k, v in response.items()))
        response.recorded_body = body
        return response

    def get(self, *args, **kwargs):
        return self._keep(self.client.get(*args, **kwargs))

    def post(self, *args, **kwargs):
        return self._keep(self.client.post(*args, **kwargs))


def secrets_of(box, connection: WithingsConnection, seen_tokens: set[str], app_secret: str) -> dict[str, str]:
    found = {f"token {i}": t for i, t in enumerate(sorted(seen_tokens))}
    found.update(
        {
            "current access token": connection.access_token,
            "current refresh token": connection.refresh_token,
            "client secret": box.client_secret,
            "study app client secret": app_secret,
            "SECRET_KEY": settings.SECRET_KEY,
            "TOTP secret": TOTP_SECRET,
            **{f"FIELD_ENCRYPTION_KEYS[{i}]": key for i, key in enumerate(settings.FIELD_ENCRYPTION_KEYS)},
        }
    )
    assert all(len(v) >= 16 for v in found.values()), "a secret too short to search for"
    return found


def test_full_flow_leaks_no_secret(
    client, sandbox, settings, tmp_path, caplog, django_capture_on_commit_callbacks, mailoutbox
):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    for name in PINNED:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
    web = Recorder(client)
    study = StudyFactory(slug="secrets", name="Secrets study", enrollment_mode=Study.EnrollmentMode.OPEN)
    SiteFactory(study=study)
    ConsentDocumentFactory(study=study, version=1)
    app_secret = "study-app-secret-never-shown-0001"
    WithingsAppFactory(study=StudyFactory(slug="other-app"), client_secret=app_secret)
    coordinator = MembershipFactory(study=study, role=Role.COORDINATOR).user
    data_manager = MembershipFactory(study=study, role=Role.DATA_MANAGER).user

    # Enroll (open link → consent) and link at the sandbox.
    assert web.post(reverse("enroll_open", args=[study.slug]), {"start": "1"}).status_code == 302
    document = study.consent_documents.get()
    digest = hashlib.sha256(enrollment.render_consent_text(document).encode()).hexdigest()
    form = {"text_sha256": digest, "signature": "Pat Example", "keep_data": "keep"}
    form |= {f"agree_{i}": "on" for i in range(len(document.statement_list))}
    assert web.post(reverse("enroll_consent"), form).status_code == 302
    web.get(reverse("enroll_connect"))
    authorize = web.get(reverse("withings_connect"))["Location"]
    back = requests.get(authorize, allow_redirects=False, timeout=5).headers["Location"]
    with django_capture_on_commit_callbacks(execute=True):
        callback = web.get(back.replace("http://testserver", ""))
    assert callback.status_code == 302, callback.recorded_body
    web.get(reverse("withings_connected"))
    connection = WithingsConnection.objects.get()
    tokens = {connection.access_token, connection.refresh_token}

    # Sync: back-fill, then a cuff sync announced by a notification, then a forced refresh.
    sandbox.state.cuff_sync(connection.withings_userid, [bp_group(182, 121, 70, date=int(time.time()) - 60)])
    while connection_backfill_step(connection_id=connection.pk).more:
        pass
    with django_capture_on_commit_callbacks(execute=True):
        notify = web.post(
            reverse("withings_notify", args=[notify_secret()]),
            {"userid": connection.withings_userid, "appli": "4", "startdate": "1", "enddate": "2"},
        )
    assert notify.status_code == 200
    connection_refresh(connection_id=connection.pk, force=True)
    connection.refresh_from_db()
    tokens |= {connection.access_token, connection.refresh_token}
    assert BloodPressureReading.objects.filter(participant=connection.participant).exists()

    # Export as the data manager, download through the admin.
    job = export_job_create(actor=data_manager, study=study, fmt="json", filters=ExportFilters(), run=False)
    export_job_run(job_id=job.pk)
    client.force_login(data_manager)
    download = web.get(reverse("admin:measurements_exportjob_download", args=[job.pk]))
    assert download.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(download.recorded_body))
    exported = [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]

    # Admin pages of the connection and the app, as coordinator and as operator; error pages.
    for user in (coordinator, UserFactory(is_superuser=True, email="operator@secrets.example")):
        client.force_login(user)
        for url in (
            reverse("admin:withings_withingsconnection_changelist"),
            reverse("admin:withings_withingsconnection_change", args=[connection.pk]),
            reverse("admin:withings_withingsapp_changelist"),
            reverse(
                "admin:withings_withingsapp_change", args=[WithingsAppFactory._meta.model.objects.get().pk]
            ),
            reverse("admin:cohorts_participant_change", args=[connection.participant_id]),
            reverse("admin:measurements_monitoredparticipant_change", args=[connection.participant_id]),
            reverse("admin:cohorts_auditevent_changelist"),
            reverse("admin:cohorts_consentrecord_changelist"),
            "/admin/no/such/page/",
        ):
            assert web.get(url).status_code in (200, 302, 403, 404)
    client.raise_request_exception = False
    with mock.patch(
        "withings.services.notifications.Notification.objects.create", side_effect=RuntimeError("boom")
    ):
        failing = web.post(
            reverse("withings_notify", args=[notify_secret()]),
            {"userid": connection.withings_userid, "appli": "4"},
        )
    assert failing.status_code == 500
    assert any(r.name == "django.request" and r.levelno == logging.ERROR for r in caplog.records)

    audit = [json.dumps([e.action, e.target, e.actor_label, e.detail]) for e in AuditEvent.objects.all()]
    mails = [f"{m.subject}\n{m.body}" for m in mailoutbox]
    logs = [caplog.text, *(r.getMessage() for r in caplog.records)]
    haystacks = {"logs": logs, "responses": web.seen, "export": exported, "audit": audit, "mail": mails}
    assert sum(len(h) for h in haystacks.values()) > 50
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) > 30, "DEBUG logging was not captured"
    for label, secret in secrets_of(sandbox, connection, tokens, app_secret).items():
        for where, texts in haystacks.items():
            assert not any(secret in text for text in texts), f"{label} found in {where}"
