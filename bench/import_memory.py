"""Peak memory of the Withings CSV import at the upload limit (a 5 MB `bp.csv`, ~160k rows).

    make bench-import    # or: .venv/bin/python bench/import_memory.py [--mb 5] [--existing 20000]
                         #     [--target-mb 150] [--paths naive command-csv command-zip admin]

Uses its own PostgreSQL database (BENCH_IMPORT_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/portal_bench_import; recreated and migrated every run). Writes a
synthetic `bp.csv` just under the limit, newest first as Withings writes it (pulse-only rows, rows
repeated, daylight-saving gaps and repeats, a tenth of the readings already stored from the API),
and the same inside a "Download my data" archive beside a 40 MB (unpacked) `raw_hr_hr.csv`. Then, each in a
fresh child process, it reports the peak RSS (VmHWM: `ru_maxrss` would carry over the parent's
peak through fork and exec) of:

- start-up: Django set up and connected, nothing imported (the baseline of every ratio);
- naive: the file read whole and turned into one reading object per row, bulk-inserted (how the
  import worked before it streamed; rolled back);
- the command `import_withings_export --dry-run` (the preview), then the import, from `bp.csv` and
  from the archive;
- the admin page as a coordinator: upload → preview → confirm, through Django's WSGI handler with
  the request body read from a file, as a server passes it.

Each import goes into a fresh participant, so every run adds the same rows. Exits non-zero if a
streamed path peaks above --target-mb. Not a test: a measurement.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/portal_bench_import"
HEADER = 'Date,"Heart rate",Systolic,Diastolic,Comments\n'
ZONE = "Europe/Paris"
STUDY = "bench-import"
PATHS = ("startup", "naive", "command-csv", "command-zip", "admin")


def setup(*, migrate: bool) -> None:
    """Point Django at the bench database; with `migrate`, recreate and migrate it first."""
    import psycopg

    url = os.environ.get("BENCH_IMPORT_DATABASE_URL", DEFAULT_URL)
    base, name = url.rsplit("/", 1)
    if migrate:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    os.environ.setdefault("WITHINGS_SANDBOX", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_DEBUG", "false")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]
    settings.DEBUG = False
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def write_files(directory: Path, *, limit: int, existing: int) -> tuple[Path, Path, list[tuple]]:
    """bp.csv just under `limit` bytes, the archive, and the readings the API already stored."""
    rng = random.Random(7)
    zone = ZoneInfo(ZONE)
    rows, stored, size = [], [], len(HEADER)
    local = dt.datetime(2025, 11, 30, 21, 0)  # noqa: DTZ001 - wall-clock time, newest first
    while True:
        local -= dt.timedelta(minutes=rng.choice((3, 5, 9, 120, 240)))
        systolic, diastolic, pulse = rng.randint(105, 170), rng.randint(60, 99), rng.randint(50, 95)
        if rng.random() < 0.05:
            line = f'"{local:%Y-%m-%d %H:%M:%S}",{pulse},,,\n'
        else:
            line = f'"{local:%Y-%m-%d %H:%M:%S}",{pulse},{systolic},{diastolic},\n'
            if len(stored) < existing and rng.random() < 0.1:
                at = local.replace(tzinfo=zone).astimezone(dt.UTC)
                stored.append((at, systolic, diastolic, pulse))
        if rng.random() < 0.01:
            line += line
        if size + len(line) > limit:
            break
        rows.append(line)
        size += len(line)
    csv_path = directory / "bp.csv"
    csv_path.write_text(HEADER + "".join(rows), encoding="utf-8")
    zip_path = directory / "export.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(csv_path, "Withings/bp.csv")
        with archive.open("Withings/raw_hr_hr.csv", "w") as noise:
            for _ in range(1_700):
                lines = (f"{rng.random():.17f},{rng.randint(40, 180)}\n" for _ in range(1_000))
                noise.write("".join(lines).encode())
        archive.writestr("Withings/README.txt", "bench")
    return csv_path, zip_path, stored


def prepare(stored: list[tuple], count: int) -> list[str]:
    """A study, a coordinator, and `count` consented participants each holding the API's `stored`
    readings (the database is recreated every run)."""
    from allauth.mfa.totp.internal.auth import TOTP
    from django.db import connection

    from cohorts import models as m

    study = m.Study.objects.create(slug=STUDY, name="Bench import")
    site = m.Site.objects.create(study=study, code="s1", name="Site 1")
    document = m.ConsentDocument.objects.create(
        study=study, version=1, title="Consent", body="Bench.", statements="I agree."
    )
    user = m.User.objects.create_user(email="bench-import@example.org", password="x" * 20, is_staff=True)
    TOTP.activate(user, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    m.StudyMembership.objects.create(user=user, study=study, role=m.Role.COORDINATOR)
    codes = []
    for i in range(count):
        participant = m.Participant.objects.create(
            study=study, site=site, code=f"I-{i:02d}", timezone=ZONE, status="active"
        )
        codes.append(participant.code)
        m.ConsentRecord.objects.create(
            participant=participant, document=document, version=1, text_sha256="0" * 64,
            rendered_text="Bench.", signature="bench", keep_data_on_withdrawal=True,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                """
INSERT INTO measurements_bloodpressurereading
  (participant_id, measured_at, source_timezone, systolic, diastolic, pulse, irregular_heartbeat,
   source, grpid, attrib, device_id, device_model, device_model_id, raw, ingested_at, updated_at,
   ambiguous_user, manual_entry, edited_upstream, deleted_upstream, local_time_ambiguous)
SELECT %s, t.at, %s, t.s, t.d, t.p, NULL, 'api', 1000000 + t.n, 0, repeat('a', 40), 'BPM Connect', 45,
       '{}', now(), now(), false, false, false, false, false
FROM unnest(%s::timestamptz[], %s::int[], %s::int[], %s::int[]) WITH ORDINALITY AS t(at, s, d, p, n)
                """,
                [participant.pk, ZONE, *map(list, zip(*stored, strict=True))],
            )
    return codes


def peak_rss_kb() -> int:
    """This process's peak resident set (kB) since it started."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(path: str, code: str, csv_path: Path, zip_path: Path) -> dict:
    setup(migrate=False)
    from django.db import connection

    connection.ensure_connection()
    baseline = peak_rss_kb()
    started = time.perf_counter()
    added = 0
    if path == "naive":
        added = _naive(code, csv_path)
    elif path in ("command-csv", "command-zip"):
        from django.core.management import call_command

        source = csv_path if path == "command-csv" else zip_path
        call_command("import_withings_export", STUDY, code, str(source), "--dry-run", stdout=io.StringIO())
        out = io.StringIO()
        call_command("import_withings_export", STUDY, code, str(source), stdout=out)
        added = int(out.getvalue().split(": ", 1)[1].split(" ", 1)[0])
    elif path == "admin":
        added = _admin(code, csv_path)
    elapsed = time.perf_counter() - started
    peak = peak_rss_kb()
    return {
        "path": path,
        "added": added,
        "seconds": round(elapsed, 1),
        "rss_after_setup_mb": round(baseline / 1024, 1),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def _naive(code: str, csv_path: Path) -> int:
    """The whole file in memory, a reading object per row, one bulk insert (rolled back)."""
    import csv
    from decimal import Decimal

    from django.db import transaction

    from cohorts.models import Participant
    from measurements.models import BloodPressureReading

    participant = Participant.objects.get(study__slug=STUDY, code=code)
    zone = ZoneInfo(ZONE)
    rows = list(csv.reader(io.StringIO(csv_path.read_bytes().decode("utf-8-sig"), newline="")))[1:]
    localized = lambda text: dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)  # noqa: E731
    readings = [
        BloodPressureReading(
            participant_id=participant.pk,
            measured_at=localized(r[0]).astimezone(dt.UTC),
            source_timezone=ZONE,
            systolic=Decimal(r[2]),
            diastolic=Decimal(r[3]),
            pulse=Decimal(r[1]),
            source=BloodPressureReading.Source.CSV,
            raw={"csv": dict(zip(("Date", "Heart rate", "Systolic", "Diastolic"), r, strict=False))},
        )
        for r in rows
        if r[2]
    ]
    with transaction.atomic():
        BloodPressureReading.objects.bulk_create(readings, batch_size=2000)
        transaction.set_rollback(True)
    return len(readings)


def _admin(code: str, csv_path: Path) -> int:
    """Upload, preview and confirm through the WSGI handler as a server would call it: the request
    body is read from a file, as from a socket (Django's test client builds it in memory)."""
    import re
    import shutil
    import uuid
    from http.cookies import SimpleCookie

    from django.core.handlers.wsgi import WSGIHandler
    from django.test import Client
    from django.urls import reverse

    from cohorts.models import Participant, User
    from measurements.models import BloodPressureReading

    participant = Participant.objects.get(study__slug=STUDY, code=code)
    before = BloodPressureReading.objects.filter(participant=participant).count()
    login = Client()
    login.force_login(User.objects.get(email="bench-import@example.org"))
    cookies = {name: morsel.value for name, morsel in login.cookies.items()}
    handler = WSGIHandler()
    url = reverse("admin:measurements_withingscsvimport_import", args=[participant.pk])

    def call(method: str, body=None, content_type: str = "", length: int = 0) -> tuple[str, bytes]:
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": url, "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
            "wsgi.url_scheme": "http", "wsgi.input": body, "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(length), "HTTP_HOST": "127.0.0.1",
            "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "HTTP_X_CSRFTOKEN": cookies.get("csrftoken", ""),
        }  # fmt: skip
        answer: list = []
        chunks = handler(environ, lambda status, headers, *_: answer.extend([status, headers]))
        content = b"".join(chunks)
        for name, value in answer[1]:
            if name.lower() == "set-cookie":
                cookies.update({k: m.value for k, m in SimpleCookie(value).items()})
        return answer[0], content

    status, _ = call("GET", io.BytesIO())
    assert status.startswith("200"), status
    boundary = uuid.uuid4().hex
    with tempfile.TemporaryFile() as body:
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="timezone"\r\n\r\n\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bp.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
        )
        with csv_path.open("rb") as source:
            shutil.copyfileobj(source, body)
        body.write(f"\r\n--{boundary}--\r\n".encode())
        length = body.tell()
        body.seek(0)
        status, preview = call("POST", body, f"multipart/form-data; boundary={boundary}", length)
    assert status.startswith("200"), (status, preview[:2000])
    staged = re.search(rb'name="staged" value="([^"]+)"', preview)
    assert staged, preview[:2000]
    form = b"staged=" + staged.group(1)
    status, _ = call("POST", io.BytesIO(form), "application/x-www-form-urlencoded", len(form))
    assert status.startswith("302"), status
    return BloodPressureReading.objects.filter(participant=participant).count() - before


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=5.0, help="bp.csv size (MiB; the upload limit is 5)")
    parser.add_argument("--existing", type=int, default=20_000, help="API readings already stored")
    parser.add_argument("--target-mb", type=float, default=150.0)
    parser.add_argument("--paths", nargs="+", choices=PATHS[1:], default=PATHS[1:])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, code, csv_path, zip_path = args.child
        print(json.dumps(child(path, code, Path(csv_path), Path(zip_path))))
        return
    setup(migrate=True)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, zip_path, stored = write_files(
            Path(tmp), limit=int(args.mb * 2**20) - 1, existing=args.existing
        )
        rows = csv_path.read_bytes().count(b"\n") - 1
        paths = ("startup", *args.paths)
        codes = prepare(stored, len(paths))
        print(
            f"bp.csv {csv_path.stat().st_size / 2**20:.2f} MB, {rows:,} rows; archive "
            f"{zip_path.stat().st_size / 2**20:.1f} MB; {len(stored):,} readings already stored"
        )
        results = {}
        heads = ("path", "added", "seconds", "RSS setup", "peak RSS", "vs start-up")
        print(" ".join(f"{h:>12}" for h in heads))
        for path, code in zip(paths, codes, strict=True):
            done = subprocess.run(
                [sys.executable, __file__, "--child", path, code, str(csv_path), str(zip_path)],
                check=False,
                capture_output=True,
                text=True,
            )
            if done.returncode:
                sys.exit(f"{path} failed:\n{done.stderr[-3000:]}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            results[path] = r
            ratio = r["peak_rss_mb"] / results["startup"]["peak_rss_mb"]
            cells = (
                path,
                r["added"],
                r["seconds"],
                r["rss_after_setup_mb"],
                r["peak_rss_mb"],
                f"{ratio:.2f}x",
            )
            print(" ".join(f"{c:>12}" for c in cells), flush=True)
    streamed = [r["peak_rss_mb"] for p, r in results.items() if p not in ("startup", "naive")]
    if streamed:
        print(f"streamed import peak {max(streamed):.1f} MB (target <= {args.target_mb:.0f} MB)")
    if streamed and "naive" in results:
        naive = results["naive"]["peak_rss_mb"]
        print(f"naive whole-file import {naive:.1f} MB = {naive / max(streamed):.1f}x the streamed peak")
    sys.exit(0 if max(streamed, default=0) <= args.target_mb else 1)


if __name__ == "__main__":
    main()
