#!/usr/bin/env bash
# Serve the portal for `make run`. With REDIS_URL set, a real Celery worker and beat run beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [[ -n "${REDIS_URL:-}" ]]; then
  echo "REDIS_URL is set: starting a Celery worker and beat (logs in var/log/)."
  mkdir -p var/log
  .venv/bin/celery -A config worker --loglevel=INFO --concurrency=2 >var/log/worker.log 2>&1 &
  pids+=($!)
  .venv/bin/celery -A config beat --loglevel=INFO --schedule=var/celerybeat-schedule \
    >var/log/beat.log 2>&1 &
  pids+=($!)
else
  echo "REDIS_URL is not set: tasks run in-process (demo mode)."
fi

cat <<MSG

  Portal:       http://127.0.0.1:8000/admin/   (health: http://127.0.0.1:8000/healthz/)
  SMS sandbox:  http://127.0.0.1:8000/sms-sandbox/   (texts sent to participants; reply as them)
  Sign in with a demo account printed above; the two-factor code comes from
  .venv/bin/python manage.py demo_totp coordinator@demo.example

MSG
# --noreload: the mounted Withings and SMS sandboxes keep their state in this process.
"$PY" manage.py runserver 127.0.0.1:8000 --noreload
