"""The REDCap token, with every logger at DEBUG: never in a log line, an admin page, an error, the push
log or an audit event — on success, on REDCap's refusal and on a transient failure."""

from __future__ import annotations

import logging

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from cohorts.models import AuditEvent, Role
from redcap_bridge.models import RedcapPushLog
from redcap_bridge.services import redcap_push
from tests.factories import MembershipFactory, ParticipantFactory, ReadingFactory, StudyFactory

from .conftest import configure

pytestmark = pytest.mark.django_db


def test_the_token_never_leaks(client, fake_redcap, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    study = StudyFactory()
    ReadingFactory(participant=ParticipantFactory(study=study))
    project, remote = configure(study, fake_redcap)
    token = remote.token
    user = MembershipFactory(study=study, role=Role.DATA_MANAGER).user
    client.force_login(user)
    bodies = []

    redcap_push(project_id=project.pk, trigger="command", sleep=lambda _s: None)
    fake_redcap.state.fail_next(5)
    redcap_push(project_id=project.pk, trigger="command", resend=True, sleep=lambda _s: None)
    del fake_redcap.state.projects[token]
    with pytest.raises(CommandError):
        call_command("redcap_push", study.slug, "--resend")
    for url in (
        reverse("admin:redcap_bridge_redcapproject_changelist"),
        reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk]),
        reverse("admin:redcap_bridge_redcappushlog_changelist"),
        *[
            reverse("admin:redcap_bridge_redcappushlog_change", args=[log.pk])
            for log in RedcapPushLog.objects.all()
        ],
        reverse("admin:cohorts_auditevent_changelist"),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        bodies.append(response.content.decode())
    # Saving with the (now refused) token again shows REDCap's words, not the token.
    response = client.post(
        reverse("admin:redcap_bridge_redcapproject_change", args=[project.pk]),
        {"study": study.pk, "api_url": fake_redcap.api_url, "token": token, "mode": "readings",
         "instrument": "home_bp", "period_days": 7, "push_every_hours": 24, "batch_size": 500,
         "map_readings_systolic": "bp_sys"},
    )  # fmt: skip
    bodies.append(response.content.decode())
    assert "You do not have permissions to use the API" in bodies[-1]

    statuses = sorted(RedcapPushLog.objects.values_list("status", flat=True))
    assert statuses == ["failed", "failed", "ok"]
    errors = list(RedcapPushLog.objects.values_list("error", flat=True))
    audits = [str(e.detail) for e in AuditEvent.objects.all()]
    everything = "\n".join([*bodies, caplog.text, capsys.readouterr().out, *errors, *audits])
    assert token not in everything
    assert token.lower() not in everything
