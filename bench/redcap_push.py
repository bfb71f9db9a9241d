"""REDCap push throughput against the fake REDCap (real HTTP on loopback, PyCap client).

    .venv/bin/python bench/redcap_push.py [--participants 100] [--readings 200] [--batch 500]

Own PostgreSQL database (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/portal_bench_redcap;
created and migrated if missing). One study with N participants × M readings, a REDCap project in
readings mode with six mapped fields. It times:

- the first push (every reading a new instance: plan, number the instances, import in batches);
- a second push (nothing changed: plan and skip, no import call);
- a forced re-send of everything (same instances, overwriteBehavior=normal: REDCap changes nothing).

The fake keeps everything in memory and validates every value, so the HTTP and REDCap-side costs are
those of a small, idle server; a real REDCap (PHP + MySQL, logging every change) is slower per row.
Not a test: a measurement (docs/performance.md holds the latest figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal_bench_redcap")

from bench.common import setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=100)
    parser.add_argument("--readings", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    setup_django()

    from cohorts.models import Participant, Study
    from measurements.models import BloodPressureReading
    from redcap_bridge.models import RedcapProject
    from redcap_bridge.sandbox import start_fake_redcap
    from redcap_bridge.services import redcap_project_check, redcap_project_save, redcap_push

    slug = f"bench-redcap-{int(time.time())}"
    study = Study.objects.create(slug=slug, name=slug, status="active")
    participants = Participant.objects.bulk_create(
        [Participant(study=study, code=f"R{i:05d}", status="active", timezone="Europe/Paris")
         for i in range(args.participants)]
    )  # fmt: skip
    start = dt.datetime(2026, 1, 1, 6, tzinfo=dt.UTC)
    rows = [
        BloodPressureReading(
            participant=p,
            measured_at=start + dt.timedelta(hours=6 * j),
            systolic=Decimal(110 + j % 40),
            diastolic=Decimal(70 + j % 20),
            pulse=Decimal(60 + j % 15),
            source="api",
            grpid=i * 1_000_000 + j,
        )
        for i, p in enumerate(participants)
        for j in range(args.readings)
    ]
    BloodPressureReading.objects.bulk_create(rows, batch_size=5000)
    total = len(rows)

    with start_fake_redcap() as fake:
        remote = fake.state.add_project()
        field_map = {
            "measured_at_local": "bp_datetime", "systolic": "bp_sys", "diastolic": "bp_dia",
            "pulse": "bp_pulse", "source": "bp_source", "irregular_heartbeat": "bp_irregular",
        }  # fmt: skip
        check = redcap_project_check(
            api_url=fake.api_url, token=remote.token, mode="readings", instrument="home_bp", event="",
            field_map=field_map,
        )  # fmt: skip
        project = RedcapProject(
            study=study, api_url=fake.api_url, token=remote.token, mode="readings", instrument="home_bp",
            field_map=field_map, batch_size=args.batch,
        )  # fmt: skip
        redcap_project_save(actor=None, project=project, check=check, changed=[], token_changed=True)

        print(
            f"{args.participants} participants × {args.readings} readings = {total} rows, batch {args.batch}"
        )
        for label, kwargs in (
            ("first push", {}),
            ("second push (unchanged)", {}),
            ("forced re-send", {"resend": True}),
        ):
            t0 = time.perf_counter()
            log = redcap_push(project_id=project.pk, trigger="command", **kwargs)
            seconds = time.perf_counter() - t0
            changes = len(remote.changes)
            print(
                f"{label:26s} {seconds:7.2f} s  sent {log.rows_sent:7d}  unchanged {log.rows_unchanged:7d}  "
                f"{total / seconds:9.0f} rows/s considered  "
                f"{(log.rows_sent / seconds if log.rows_sent else 0):8.0f} rows/s sent  "
                f"REDCap changes so far {changes}"
            )
        assert len(remote.data) == total


if __name__ == "__main__":
    main()
