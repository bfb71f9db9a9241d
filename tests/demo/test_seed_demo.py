import pytest
from django.core.management import call_command

from cohorts.enrollment import participant_collection_refusal
from cohorts.models import ConsentRecord, Participant, Study, StudyMembership, User
from tests.factories import has_totp


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_every_demo_account_has_totp():
    call_command("seed_demo", "--allow-production")
    counts = (Study.objects.count(), Participant.objects.count(), StudyMembership.objects.count())
    call_command("seed_demo", "--allow-production")
    assert counts == (
        Study.objects.count(),
        Participant.objects.count(),
        StudyMembership.objects.count(),
    )
    demo = Study.objects.get(slug="demo")
    assert demo.enrollment_mode == Study.EnrollmentMode.OPEN
    assert all(has_totp(u) for u in User.objects.all())
    assert User.objects.filter(is_superuser=True).count() == 1
    # No consent, no data: every demo participant past enrollment has signed the consent, once.
    enrolled = Participant.objects.exclude(status=Participant.Status.INVITED)
    assert enrolled.exists()
    assert all(p.consents.count() == 1 for p in enrolled)
    assert all(participant_collection_refusal(p) is None for p in enrolled)
    assert not ConsentRecord.objects.filter(participant__status=Participant.Status.INVITED).exists()


@pytest.mark.django_db
def test_seed_demo_refuses_without_debug():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo")
    assert not Study.objects.exists()
