import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction

from cohorts.models import AuditEvent, Participant, Role, Study
from cohorts.scoping import scoped, user_can
from tests.factories import AuditEventFactory, MembershipFactory, ParticipantFactory, UserFactory


@pytest.mark.django_db
def test_fail_closed_for_anonymous_inactive_and_members_of_nothing():
    ParticipantFactory.create_batch(3)
    lonely = UserFactory()
    inactive = MembershipFactory(user=UserFactory(is_active=False)).user
    for user in (AnonymousUser(), lonely, inactive):
        assert scoped(Participant.objects.all(), user).count() == 0
        assert scoped(Study.objects.all(), user).count() == 0


@pytest.mark.django_db
def test_roles_filter_and_superuser_sees_all():
    p1, p2 = ParticipantFactory(), ParticipantFactory()
    m = MembershipFactory(study=p1.study, role=Role.INVESTIGATOR)
    assert list(scoped(Participant.objects.all(), m.user)) == [p1]
    assert list(scoped(Participant.objects.all(), m.user, roles=[Role.COORDINATOR])) == []
    assert user_can(m.user, p1, [Role.INVESTIGATOR])
    assert not user_can(m.user, p2, [Role.INVESTIGATOR])
    assert not user_can(m.user, p1, [Role.COORDINATOR])
    root = UserFactory(is_superuser=True)
    assert scoped(Participant.objects.all(), root).count() == 2


@pytest.mark.django_db
def test_audit_events_cannot_be_updated_or_deleted_in_the_database():
    event = AuditEventFactory()
    assert connection.vendor == "postgresql"
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    event.refresh_from_db()
    assert event.action == "participant.viewed"


@pytest.mark.django_db
def test_participant_codes_are_unique_per_study():
    p = ParticipantFactory(code="X-1")
    ParticipantFactory(code="X-1")  # another study: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Participant.objects.create(study=p.study, code="X-1")
