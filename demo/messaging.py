"""Demo reminders: the `demo` study's rules are live with the default wording, and its active
participants have (fictional) numbers that opted in, so `make run` shows the prompts in the SMS
sandbox at their windows. Idempotent: existing rules, wording and contact details are left alone."""

from __future__ import annotations

from django.db import transaction
from django.utils.timezone import now

from cohorts.contacts import ContactDetails, contact_save
from cohorts.models import Participant, ParticipantContact, Study
from cohorts.services import audit_record
from messaging import wording
from messaging.models import Reason, StudyMessaging
from messaging.scheduler.candidates import RULE_REASONS

DEMO_STUDY = "demo"
#: Ofcom's range for drama (+44 7700 900000–900999): numbers that reach nobody.
FICTIONAL_MOBILE = "+44770090{:04d}"


@transaction.atomic
def seed_messaging() -> dict[str, int]:
    study = Study.objects.filter(slug=DEMO_STUDY).first()
    if study is None:
        return {"contacts": 0}
    rules, created = StudyMessaging.objects.get_or_create(study=study, defaults={"live_since": now()})
    if created:
        audit_record(action="messaging.rules_live", study=study, target=DEMO_STUDY, detail={"demo": True})
    for reason in (*RULE_REASONS, Reason.ONE_OFF):
        for channel in ParticipantContact.Channel.values:
            wording.current_template(study, reason, channel, wording.DEFAULT_LANGUAGE)
    contacts = 0
    active = Participant.objects.filter(study=study, status=Participant.Status.ACTIVE, contact__isnull=True)
    for participant in active.order_by("code"):
        details = ContactDetails(phone=FICTIONAL_MOBILE.format(participant.pk % 1000), reminders_opt_in=True)
        contact_save(actor=None, participant=participant, details=details, via="enrollment")
        contacts += 1
    return {"contacts": contacts, "live": int(rules.live_since is not None)}
