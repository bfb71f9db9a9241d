"""Median render time of the coordinators' monitoring pages at cohort scale.

    .venv/bin/python bench/monitoring_changelist.py [--participants 10000] [--per-participant 500] [--runs 15]

Uses its own PostgreSQL database (BENCH_MONITORING_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_monitoring; created and migrated if missing) and fills one
study in SQL (generate_series): N participants × M readings (4 a day, morning and evening), the daily
adherence rollup, a cuff each and open alerts for 1 in 20. Then it renders, through Django's test client
as a coordinator of the whole study: the participant changelist (default order, sorted by 7-day
adherence, filtered below target), the study page and the worklist, and reports the median of
`--runs` renders. A naive baseline (the same columns for one page of 100 rows with per-row queries) is
timed in the same run for comparison. Not a test: a measurement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_monitoring"


def setup() -> None:
    import psycopg

    url = os.environ.get("BENCH_MONITORING_DATABASE_URL", DEFAULT_URL)
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("WITHINGS_SANDBOX", "false")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    call_command("migrate", verbosity=0)


def fill(participants: int, per_participant: int) -> tuple[int, float]:
    import datetime as dt

    from django.db import connection, transaction
    from django.utils.timezone import now

    from cohorts.models import Participant, Site, Study

    slug = f"bench-{participants}x{per_participant}"
    days = (per_participant + 3) // 4
    span = days + days // 8 + 1  # every 9th day is missed (no readings)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT s.id, count(DISTINCT p.id) FROM cohorts_study s LEFT JOIN cohorts_participant p "
            "ON p.study_id = s.id WHERE s.slug = %s GROUP BY s.id",
            [slug],
        )
        row = cur.fetchone()
        if row and row[1] == participants:
            cur.execute(
                "SELECT count(*) FROM measurements_bloodpressurereading r JOIN cohorts_participant p "
                "ON p.id = r.participant_id WHERE p.study_id = %s",
                [row[0]],
            )
            if cur.fetchone()[0] == participants * per_participant:
                return row[0], 0.0
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        study, _ = Study.objects.get_or_create(
            slug=slug, defaults={"name": f"Bench {participants}x{per_participant}", "status": "active"}
        )
        sid = study.pk
        cur.execute(
            "DELETE FROM measurements_alert WHERE study_id = %s;"
            "DELETE FROM measurements_dailyadherence WHERE study_id = %s;"
            "DELETE FROM measurements_device WHERE participant_id IN (SELECT id FROM cohorts_participant "
            "WHERE study_id = %s);"
            "DELETE FROM measurements_bloodpressurereading WHERE participant_id IN "
            "(SELECT id FROM cohorts_participant WHERE study_id = %s);"
            "DELETE FROM cohorts_participant WHERE study_id = %s;"
            "DELETE FROM cohorts_site WHERE study_id = %s;"
            "DELETE FROM measurements_studyprotocol WHERE study_id = %s;",
            [sid] * 7,
        )
        cur.execute(
            "INSERT INTO measurements_studyprotocol (study_id, kind, readings_per_window, readings_per_day, "
            "morning_start, morning_end, evening_start, evening_end, duration_days, discard_first_day, "
            "min_valid_readings, adherence_target_percent, home_systolic_threshold, "
            "home_diastolic_threshold, "
            "crisis_systolic, crisis_diastolic, no_data_days, cuff_not_synced_days, low_battery_alerts, "
            "updated_at) VALUES (%s, 'hbpm', 2, 4, '04:00', '12:00', '17:00', '00:00', NULL, true, 12, 80, "
            "135, 85, 180, 120, 3, 7, true, now())",
            [sid],
        )
        cur.execute(
            "INSERT INTO cohorts_site (study_id, code, name) SELECT %s, 's' || g, 'Site ' || g "
            "FROM generate_series(1, 4) g",
            [sid],
        )
        sites = list(Site.objects.filter(study_id=sid).order_by("pk"))
        start = now().date() - dt.timedelta(days=span)
        Participant.objects.bulk_create(
            (
                Participant(
                    study_id=sid,
                    site=sites[g % 4],
                    code=f"B-{g:06d}",
                    status="withdrawn" if g % 50 == 0 else "active",
                    link_status="needs_reauth" if g % 40 == 0 else "active",
                    timezone="Europe/Paris",
                    start_date=start,
                    enrolled_at=now() - dt.timedelta(days=span),
                )
                for g in range(1, participants + 1)
            ),
            batch_size=2000,
        )
        # 4 readings a day (2 morning, 2 evening), some days skipped per participant.
        cur.execute(
            """
INSERT INTO measurements_bloodpressurereading
  (participant_id, measured_at, source_timezone, systolic, diastolic, pulse, irregular_heartbeat,
   source, grpid, attrib, device_id, device_model, device_model_id, raw, ingested_at, updated_at,
   ambiguous_user, manual_entry, edited_upstream, deleted_upstream, local_time_ambiguous)
SELECT p.id,
       (current_date - %s)::timestamptz + make_interval(days => (k / 4 + k / 32)::int)
         + CASE WHEN k %% 4 < 2 THEN interval '6 hours' ELSE interval '18 hours' END
         + make_interval(mins => ((k %% 2) * 3 + (p.id %% 50))::int),
       'Europe/Paris', 105 + ((p.id * 7 + k * 13) %% 60), 65 + ((p.id * 3 + k * 5) %% 35), 70, NULL,
       'api', k, 0, 'dev', 'BPM Connect', 45, '{}'::jsonb, now(), now(), false, false, false, false, false
FROM cohorts_participant p CROSS JOIN generate_series(0, %s - 1) k
WHERE p.study_id = %s
""",
            [span, per_participant, sid],
        )
        cur.execute(
            """
INSERT INTO measurements_dailyadherence
  (study_id, participant_id, day, protocol_day, morning, evening, other, counted, expected, avg_count,
   systolic_sum, diastolic_sum, normal, elevated, stage_1, stage_2, crisis, updated_at)
SELECT %s, r.participant_id, d.day, (d.day - p.start_date) + 1,
       count(*) FILTER (WHERE extract(hour FROM r.measured_at AT TIME ZONE 'Europe/Paris') BETWEEN 4 AND 11),
       count(*) FILTER (WHERE extract(hour FROM r.measured_at AT TIME ZONE 'Europe/Paris') >= 17),
       count(*) FILTER (WHERE extract(hour FROM r.measured_at AT TIME ZONE 'Europe/Paris')
                        NOT BETWEEN 4 AND 11
                        AND extract(hour FROM r.measured_at AT TIME ZONE 'Europe/Paris') < 17),
       least(count(*), 4), 4, CASE WHEN d.day = p.start_date THEN 0 ELSE count(*) END,
       CASE WHEN d.day = p.start_date THEN 0 ELSE sum(r.systolic) END,
       CASE WHEN d.day = p.start_date THEN 0 ELSE sum(r.diastolic) END,
       count(*) FILTER (WHERE r.systolic < 120 AND r.diastolic < 80),
       count(*) FILTER (WHERE r.systolic BETWEEN 120 AND 129.99 AND r.diastolic < 80),
       count(*) FILTER (WHERE (r.systolic BETWEEN 130 AND 139.99 OR r.diastolic BETWEEN 80 AND 89.99)
                        AND r.systolic < 140 AND r.diastolic < 90),
       count(*) FILTER (WHERE (r.systolic >= 140 OR r.diastolic >= 90) AND r.systolic <= 180
                        AND r.diastolic <= 120),
       count(*) FILTER (WHERE r.systolic > 180 OR r.diastolic > 120), now()
FROM measurements_bloodpressurereading r
JOIN cohorts_participant p ON p.id = r.participant_id
CROSS JOIN LATERAL (SELECT (r.measured_at AT TIME ZONE 'Europe/Paris')::date AS day) d
WHERE p.study_id = %s
GROUP BY r.participant_id, d.day, p.start_date
""",
            [sid, sid],
        )
        # Missed days (every 9th): zero rows, as the nightly task makes them.
        cur.execute(
            "INSERT INTO measurements_dailyadherence (study_id, participant_id, day, protocol_day, morning, "
            "evening, other, counted, expected, avg_count, systolic_sum, diastolic_sum, normal, elevated, "
            "stage_1, stage_2, crisis, updated_at) SELECT %s, p.id, p.start_date + g, g + 1, 0, 0, 0, 0, 4, "
            "0, 0, 0, 0, 0, 0, 0, 0, now() FROM cohorts_participant p CROSS JOIN generate_series(0, %s) g "
            "WHERE p.study_id = %s AND p.start_date + g < current_date "
            "ON CONFLICT (participant_id, day) DO NOTHING",
            [sid, span, sid],
        )
        cur.execute(
            "INSERT INTO measurements_device (participant_id, device_id, device_type, model, model_id, "
            "battery, timezone, first_session_at, last_session_at, updated_at) "
            "SELECT id, md5(id::text), 'Blood Pressure Monitor', 'BPM Connect', 45, "
            "CASE WHEN id %% 30 = 0 THEN 'low' ELSE 'high' END, 'Europe/Paris', now() - interval '130 days', "
            "now() - make_interval(hours => (id %% 200)::int), now() "
            "FROM cohorts_participant WHERE study_id = %s",
            [sid],
        )
        cur.execute(
            "INSERT INTO measurements_alert (study_id, participant_id, kind, episode_key, detail, "
            "occurrences, opened_at, last_seen_at, resolution, note) "
            "SELECT %s, id, 'no_data', 'bench', '{}'::jsonb, 1, now(), now(), '', '' "
            "FROM cohorts_participant WHERE study_id = %s AND id %% 20 = 0",
            [sid, sid],
        )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return sid, time.perf_counter() - started


def coordinator(study_id: int):
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    from cohorts.models import StudyMembership, User

    user, _ = User.objects.get_or_create(email="bench.coordinator@example.org", defaults={"is_staff": True})
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    StudyMembership.objects.get_or_create(user=user, study_id=study_id, defaults={"role": "coordinator"})
    return user


def timed(fn, runs: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    fn()  # warm-up
    samples = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            t = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t) * 1000)
        queries = len(ctx.captured_queries)
    return statistics.median(samples), queries


def naive_page(study_id: int) -> None:
    """The same columns for one page of 100 rows, one query per row and column (N+1)."""
    import datetime as dt

    from django.db.models import Sum
    from django.utils.timezone import now

    from cohorts.models import Participant
    from measurements.models import Alert, BloodPressureReading, DailyAdherence, Device

    today = now().date()
    for p in Participant.objects.filter(study_id=study_id).select_related("site").order_by("code")[:100]:
        last = BloodPressureReading.objects.filter(participant=p, deleted_upstream=False).order_by(
            "-measured_at"
        )
        last.values_list("measured_at", "systolic", "diastolic").first()
        week = DailyAdherence.objects.filter(
            participant=p, day__gte=today - dt.timedelta(days=7), day__lt=today
        )
        week.aggregate(c=Sum("counted"), e=Sum("expected"))
        DailyAdherence.objects.filter(participant=p, day__lt=today).aggregate(
            c=Sum("counted"),
            e=Sum("expected"),
            n=Sum("avg_count"),
            s=Sum("systolic_sum"),
            d=Sum("diastolic_sum"),
        )
        Device.objects.filter(participant=p).order_by("-last_session_at").values_list("battery").first()
        Alert.objects.filter(participant=p, resolved_at__isnull=True).count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--per-participant", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    setup()
    from django.test import Client
    from django.urls import reverse

    from cohorts.models import Study
    from measurements.models import BloodPressureReading, DailyAdherence

    study_id, seconds = fill(args.participants, args.per_participant)
    study = Study.objects.get(pk=study_id)
    readings = BloodPressureReading.objects.filter(participant__study_id=study_id).count()
    rollups = DailyAdherence.objects.filter(study_id=study_id).count()
    print(
        f"study {study.slug}: {args.participants} participants, {readings:,} readings, {rollups:,} daily rows"
        + (f" (filled in {seconds:.0f} s)" if seconds else " (reused)")
    )
    client = Client()
    client.force_login(coordinator(study_id))
    changelist = reverse("admin:measurements_monitoredparticipant_changelist")

    def get(url):
        def run():
            response = client.get(url)
            assert response.status_code == 200, response.status_code

        return run

    middle = max(1, args.participants // 200)
    pages = [
        ("changelist (default order, 100 rows)", get(changelist)),
        ("changelist sorted by 7-day adherence", get(changelist + "?o=7")),
        ("changelist sorted by whole-study adherence", get(changelist + "?o=8")),
        ("changelist filtered below target", get(changelist + "?adherence=below")),
        (f"changelist page {middle}", get(changelist + f"?p={middle}")),
        (
            "study page (heatmap 50 x 28, counts)",
            get(reverse("admin:measurements_monitoring_study", args=[study.slug])),
        ),
        ("worklist", get(reverse("admin:measurements_monitoring_worklist"))),
        ("naive per-row baseline (data only, 100 rows)", lambda: naive_page(study_id)),
    ]
    results = {}
    for label, fn in pages:
        median, queries = timed(fn, args.runs)
        results[label] = median
        print(f"{label:<48} median {median:8.1f} ms  ({queries} queries, {args.runs} runs)")
    base = results["changelist (default order, 100 rows)"]
    naive = results["naive per-row baseline (data only, 100 rows)"]
    print(f"naive per-row data for one page / annotated changelist render: {naive / base:.1f}x")
    print("target: changelist < 300 ms ->", "met" if base < 300 else "NOT met")


if __name__ == "__main__":
    main()
