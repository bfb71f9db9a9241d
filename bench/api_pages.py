"""API page latency at 1M readings: `GET /api/v1/studies/<slug>/readings/` through the whole Django
stack (token auth, rate limit, keyset page, rendering, the audit row), in-process with the test client.

    .venv/bin/python bench/api_pages.py [--rows 1000000] [--pages 30]

Own database (BENCH_DATABASE_URL, default portal_bench_api); the readings are made once by SQL
(bench/export_memory.fill) and reused. Pages are timed at the start, in the middle and at the end of
the study (a cursor is made for the position, as the API would hand it out), in JSON and CSV, full
and de-identified; a small second study (1,000 readings) shows a tenant beside the large one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

from common import DEFAULT_URL, setup_django, table

os.environ.setdefault("BENCH_DATABASE_URL", DEFAULT_URL.rsplit("/", 1)[0] + "/portal_bench_api")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=30, help="pages timed per case")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.utils.timezone import now
    from export_memory import fill

    from api.selectors import ReadingsQuery, encode_cursor
    from api.services import access_token_create
    from cohorts.models import ExportRights, Role, Study, StudyMembership, User
    from measurements.exports.rows import FIELDS, to_row
    from measurements.models import BloodPressureReading

    settings.ALLOWED_HOSTS = ["*"]
    settings.API_RATE_LIMIT_PER_MINUTE = 10**9
    big_id, small_id = fill(args.rows), fill(1000)
    with connection.cursor() as c:  # as autovacuum would have, in a running installation
        c.execute("ANALYZE cohorts_participant")
        c.execute("ANALYZE cohorts_studymembership")
    big, small = Study.objects.get(pk=big_id), Study.objects.get(pk=small_id)
    user, _ = User.objects.get_or_create(email="bench-api@example.org", defaults={"is_staff": True})
    for study in (big, small):
        StudyMembership.objects.get_or_create(user=user, study=study, defaults={"role": Role.DATA_MANAGER})
    limited, _ = User.objects.get_or_create(email="bench-api-deid@example.org", defaults={"is_staff": True})
    StudyMembership.objects.get_or_create(
        user=limited,
        study=big,
        defaults={"role": Role.DATA_MANAGER, "export_rights": ExportRights.DEIDENTIFIED},
    )
    expires = now() + dt.timedelta(days=1)
    token = access_token_create(user=user, name="bench", expires_at=expires)[1]
    deid_token = access_token_create(user=limited, name="bench", expires_at=expires)[1]
    client = Client(HTTP_HOST="127.0.0.1")

    def cursor_at(study, fraction: float, deidentified: bool) -> str | None:
        qs = BloodPressureReading.objects.filter(participant__study=study).order_by("measured_at", "pk")
        count = qs.count()
        if fraction == 0:
            return None
        record = qs.values_list(*FIELDS)[int(count * fraction) - 1]
        return encode_cursor(ReadingsQuery(study=study, deidentified=deidentified), to_row(record))

    def time_pages(study, *, fraction, fmt, limit, deid=False) -> tuple[float, float]:
        cursor = cursor_at(study, fraction, deid)
        samples = []
        for _ in range(args.pages):
            params = {"limit": limit, "format": fmt, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            response = client.get(
                f"/api/v1/studies/{study.slug}/readings/",
                params,
                HTTP_AUTHORIZATION=f"Bearer {deid_token if deid else token}",
            )
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:200]
        samples.sort()
        return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]

    rows = []
    cases = [
        ("1M study, first page", big, 0, "json", 1000, False),
        ("1M study, middle", big, 0.5, "json", 1000, False),
        ("1M study, last pages", big, 0.999, "json", 1000, False),
        ("1M study, middle, CSV", big, 0.5, "csv", 1000, False),
        ("1M study, middle, 100/page", big, 0.5, "json", 100, False),
        ("1M study, middle, 10k/page", big, 0.5, "json", 10_000, False),
        ("1M study, middle, de-identified", big, 0.5, "json", 1000, True),
        ("1k study beside it, first page", small, 0, "json", 1000, False),
    ]
    for name, study, fraction, fmt, limit, deid in cases:
        p50, p95 = time_pages(study, fraction=fraction, fmt=fmt, limit=limit, deid=deid)
        rows.append((name, fmt, limit, f"{p50:.1f}", f"{p95:.1f}", f"{limit / p50 * 1000:,.0f}"))
    print(table(rows, ("case", "format", "per page", "p50 ms", "p95 ms", "readings/s")))

    # The plan of a middle page, as the view runs it (the user's scoping included).
    from django.db.models import Q

    from api.selectors import decode_cursor
    from measurements.exports.rows import ExportFilters, readings_for_export

    at, pk = decode_cursor(ReadingsQuery(study=big), cursor_at(big, 0.5, False) or "")
    qs = readings_for_export(study_id=big.pk, filters=ExportFilters(), user=user)
    page = qs.filter(Q(measured_at__gte=at), Q(measured_at__gt=at) | Q(pk__gt=pk)).order_by(
        "measured_at", "pk"
    )
    print(page.values_list(*FIELDS)[:1001].explain(analyze=True))


if __name__ == "__main__":
    main()
