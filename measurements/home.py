"""The staff home (the admin's index page): a card per study the user belongs to (participants by
status, broken links, open alerts, adherence over the last 7 days), today's worklist for
coordinators (most urgent first: see `monitoring.severity`), and the export jobs of data managers.

Every number goes through `scoping.scoped()` (a site-limited member counts their site only) and is
computed by PostgreSQL in a constant number of queries, whatever the number of participants.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from django.db.models import Count, Sum

from cohorts.models import Participant, Study
from cohorts.scoping import EDITORS, memberships, scoped
from measurements.exports import EXPORT_ROLES
from measurements.models import Alert, ExportJob, StudyProtocol

from .monitoring.counting import adherence_annotate
from .monitoring.selectors import LINK_BROKEN
from .monitoring.worklist import WorklistItem, worklist_items

WORKLIST_ROWS = 25
EXPORT_ROWS = 10
DEFAULT_TARGET = StudyProtocol._meta.get_field("adherence_target_percent").default


@dataclass(frozen=True)
class Membership:
    role: str
    role_label: str
    site_name: str | None


@dataclass(frozen=True)
class StudyCard:
    study: Study
    memberships: list[Membership]
    by_status: list[tuple[str, int]]
    participants: int
    links_broken: int
    open_alerts: int
    week_counted: int
    week_expected: int
    target_percent: int
    can_edit: bool
    can_export: bool

    @property
    def week_percent(self) -> float | None:
        return 100.0 * self.week_counted / self.week_expected if self.week_expected else None

    @property
    def below_target(self) -> bool:
        return self.week_percent is not None and self.week_percent < self.target_percent


@dataclass(frozen=True)
class StaffHome:
    cards: list[StudyCard]
    is_operator: bool
    worklist: list[WorklistItem] | None = None
    worklist_more: bool = False
    exports: list[ExportJob] | None = None
    export_studies: list[Study] = field(default_factory=list)


def staff_home(*, user, at: dt.datetime | None = None) -> StaffHome:
    """What `user` sees first after signing in to the admin."""
    operator = bool(user.is_superuser and user.is_active)
    granted: dict[int, list[Membership]] = {}
    for m in memberships(user).select_related("site").order_by("role"):
        site = m.site.name if m.site else None
        granted.setdefault(m.study_id, []).append(Membership(m.role, m.get_role_display(), site))
    roles = {m.role for ms in granted.values() for m in ms}
    studies = list(scoped(Study.objects.all(), user).select_related("protocol").order_by("name"))
    cards = _cards(user, studies, granted, operator=operator, at=at)
    home = StaffHome(cards=cards, is_operator=operator)
    if operator or roles & EDITORS:
        items = worklist_items(user=user, limit=WORKLIST_ROWS + 1, roles=EDITORS)
        home = replace(home, worklist=items[:WORKLIST_ROWS], worklist_more=len(items) > WORKLIST_ROWS)
    if operator or roles & EXPORT_ROLES:
        jobs = scoped(ExportJob.objects.all(), user, EXPORT_ROLES).order_by("-created_at")
        home = replace(
            home,
            exports=list(jobs.select_related("study", "site", "requested_by")[:EXPORT_ROWS]),
            export_studies=[card.study for card in cards if card.can_export],
        )
    return home


def _cards(user, studies: list[Study], granted, *, operator: bool, at: dt.datetime | None) -> list[StudyCard]:
    participants = scoped(Participant.objects.all(), user).order_by()
    statuses: dict[int, dict[str, int]] = {}
    broken: dict[int, int] = {}
    for study_id, status, n, n_broken in participants.values_list("study_id", "status").annotate(
        n=Count("pk"), broken=Count("pk", filter=LINK_BROKEN)
    ):
        statuses.setdefault(study_id, {})[status] = n
        broken[study_id] = broken.get(study_id, 0) + n_broken
    alerts = dict(
        scoped(Alert.objects.filter(resolved_at__isnull=True), user)
        .order_by()
        .values_list("study_id")
        .annotate(n=Count("pk"))
    )
    week = {
        study_id: (counted or 0, expected or 0)
        for study_id, counted, expected in adherence_annotate(participants, at=at)
        .values_list("study_id")
        .annotate(counted=Sum("week_counted"), expected=Sum("week_expected"))
    }
    cards = []
    for study in studies:
        mine = granted.get(study.pk, [])
        roles = {m.role for m in mine}
        by_status = statuses.get(study.pk, {})
        counted, expected = week.get(study.pk, (0, 0))
        cards.append(
            StudyCard(
                study=study,
                memberships=mine,
                by_status=[(label, by_status.get(value, 0)) for value, label in Participant.Status.choices],
                participants=sum(by_status.values()),
                links_broken=broken.get(study.pk, 0),
                open_alerts=alerts.get(study.pk, 0),
                week_counted=counted,
                week_expected=expected,
                target_percent=_target(study),
                can_edit=operator or bool(roles & EDITORS),
                can_export=operator or bool(roles & EXPORT_ROLES),
            )
        )
    return cards


def _target(study: Study) -> int:
    try:
        return study.protocol.adherence_target_percent
    except StudyProtocol.DoesNotExist:
        return DEFAULT_TARGET
