"""The demo study has live reminder rules, default wording and opted-in participants; idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from cohorts.models import ParticipantContact
from core.ticking import TickRequest
from messaging.models import Message, MessageTemplate, StudyMessaging
from messaging.scheduler.run import reminders_tick

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_the_demo_study_send_prompts_and_is_idempotent(settings):
    settings.DEBUG = True
    call_command("seed_demo", verbosity=0)
    rules = StudyMessaging.objects.get(study__slug="demo")
    assert rules.live_since is not None
    assert rules.prompts
    assert rules.no_data_reminders
    assert rules.relink_reminders
    assert MessageTemplate.objects.filter(
        study__slug="demo", reason="prompt", channel="sms", version=1
    ).exists()
    contacts = ParticipantContact.objects.filter(participant__study__slug="demo", reminders_opt_in=True)
    assert contacts.count() >= 5
    assert all(c.phone.startswith("+44770090") for c in contacts)
    templates = MessageTemplate.objects.count()

    call_command("seed_demo", verbosity=0)
    assert StudyMessaging.objects.get(study__slug="demo").live_since == rules.live_since
    assert MessageTemplate.objects.count() == templates
    assert ParticipantContact.objects.filter(participant__study__slug="demo").count() == contacts.count()

    # Tomorrow at 18:00 in the study's zone (evening window, outside quiet hours): prompts go out.
    zone = rules.study.default_timezone
    from zoneinfo import ZoneInfo

    tomorrow = dt.datetime.now(ZoneInfo(zone)).date() + dt.timedelta(days=1)
    evening = dt.datetime.combine(tomorrow, dt.time(18, 0), tzinfo=ZoneInfo(zone))
    lines = reminders_tick(TickRequest(at=evening))
    assert any(line.what == "queued prompt" and line.count > 0 for line in lines)
    assert Message.objects.filter(reason="prompt", dedupe_key=f"prompt:{tomorrow}:evening").exists()
