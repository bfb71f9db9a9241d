"""Queue what the rules decide: render each message from its study's current wording and insert the
``Message`` rows (status queued) the dispatcher sends.

One transaction per run, under an advisory lock on PostgreSQL: two ticks racing (beat and an
operator, two workers) run one after the other, so the second sees the first's rows and neither the
caps nor the log's unique key (participant, dedupe_key) can be beaten. A dry run does the same work
and rolls it back, so it reports exactly what a real run would queue and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable

from django.db import connection, transaction

from cohorts.models import Study
from core.ticking import TickLine, TickRequest
from messaging import wording
from messaging.links import participant_links
from messaging.models import Message, MessageTemplate, StudyMessaging

from .candidates import Candidate
from .naive import decide_per_participant, rules_of
from .sql import decide_sql
from .windows import study_windows

JOB = "messaging"
LOCK_KEY = 0x6D_7367_7469_636B  # "msgtick": one tick at a time across every process
SAMPLES = 3


class _DryRun(Exception):
    pass


def live_rules(*, at: dt.datetime, study: str | None = None) -> list[StudyMessaging]:
    rules = StudyMessaging.objects.filter(live_since__lte=at).select_related("study").order_by("study__slug")
    return list(rules.filter(study__slug=study) if study else rules)


def decide(*, at: dt.datetime, rules: Iterable[StudyMessaging]) -> list[Candidate]:
    """Everything due at ``at`` under these rules: one statement on PostgreSQL."""
    by_study = {sm.study_id: sm for sm in rules}
    if not by_study:
        return []
    windows = study_windows(by_study, at)
    if connection.vendor == "postgresql":
        return decide_sql(at=at, windows=windows)
    return decide_per_participant(at=at, windows=windows, rules={k: rules_of(v) for k, v in by_study.items()})


class Renderer:
    """Renders candidates with the study's current wording; templates looked up once per run."""

    def __init__(self, studies: dict[int, Study]) -> None:
        self.studies = studies
        self.link = participant_links()
        self._templates: dict[tuple[int, str, str, str], MessageTemplate] = {}

    def template(self, c: Candidate) -> MessageTemplate:
        key = (c.study_id, c.reason, c.channel, c.language)
        if key not in self._templates:
            self._templates[key] = wording.current_template(self.studies[c.study_id], *key[1:])
        return self._templates[key]

    def context(self, c: Candidate, *, link: str) -> dict[str, object]:
        ctx: dict[str, object] = {**wording.study_context(self.studies[c.study_id])}
        ctx.update(code=c.code, link=link, window=c.window, days=c.days or "")
        ctx["window_start"] = c.window_start.strftime("%H:%M") if c.window_start else ""
        ctx["window_end"] = c.window_end.strftime("%H:%M") if c.window_end else ""
        return ctx

    def message(self, c: Candidate, *, at: dt.datetime) -> Message:
        template = self.template(c)
        subject, body = wording.render(template, self.context(c, link=self.link(c.participant_id)))
        return Message(
            study_id=c.study_id,
            participant_id=c.participant_id,
            reason=c.reason,
            dedupe_key=c.dedupe_key,
            channel=c.channel,
            template=template,
            subject=subject,
            body=body,
            local_day=c.local_day,
            due_at=at,
            created_at=at,
            status_changed_at=at,
        )

    def sample(self, c: Candidate) -> str:
        """The text with the private link left out (reports and previews are read by staff)."""
        return f"{c.code}: " + wording.render(self.template(c), self.context(c, link="[private link]"))[1]


def queue_due(*, at: dt.datetime, rules: list[StudyMessaging]) -> tuple[list[Candidate], Renderer]:
    """Decide and insert in the caller's transaction (callers hold the lock)."""
    renderer = Renderer({sm.study_id: sm.study for sm in rules})
    due = decide(at=at, rules=rules)
    Message.objects.bulk_create([renderer.message(c, at=at) for c in due], ignore_conflicts=True)
    return due, renderer


def lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def report(due: list[Candidate], renderer: Renderer, *, dry_run: bool) -> list[TickLine]:
    counts: Counter[tuple[int, str]] = Counter((c.study_id, c.reason) for c in due)
    samples: dict[tuple[int, str], list[str]] = defaultdict(list)
    for c in due:
        if dry_run and len(samples[c.study_id, c.reason]) < SAMPLES:
            samples[c.study_id, c.reason].append(renderer.sample(c))
    verb = "would queue" if dry_run else "queued"
    return [
        TickLine(JOB, renderer.studies[sid].slug, f"{verb} {reason}", n, tuple(samples[sid, reason]))
        for (sid, reason), n in sorted(
            counts.items(), key=lambda kv: (renderer.studies[kv[0][0]].slug, kv[0][1])
        )
    ]


def reminders_tick(request: TickRequest) -> list[TickLine]:
    """The tick job: queue every reminder due at the instant (or report it, for a dry run)."""
    rules = live_rules(at=request.at, study=request.study)
    lines: list[TickLine] = []
    try:
        with transaction.atomic():
            lock()
            due, renderer = queue_due(at=request.at, rules=rules)
            lines = report(due, renderer, dry_run=request.dry_run)
            if request.dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return lines
