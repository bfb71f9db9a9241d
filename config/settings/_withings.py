"""The Withings link: the developer app, its endpoints, the shared call budget and the sync's timings."""

from ._env import env

WITHINGS_CLIENT_ID = env("WITHINGS_CLIENT_ID", default="")
WITHINGS_CLIENT_SECRET = env("WITHINGS_CLIENT_SECRET", default="")
WITHINGS_API_URL = env("WITHINGS_API_URL", default="https://wbsapi.withings.net").rstrip("/")
WITHINGS_AUTH_URL = env("WITHINGS_AUTH_URL", default="https://account.withings.com").rstrip("/")
WITHINGS_SANDBOX_MOUNTED = False  # development only (config/settings/local.py)
# Timeout of every upstream HTTP call, in seconds.
WITHINGS_HTTP_TIMEOUT = env.float("WITHINGS_HTTP_TIMEOUT", default=10.0)

# The shared upstream budget (withings.ratelimit): calls are paced at PER_MINUTE a minute; notification
# syncs may run up to BURST slots ahead of the pace. PER_MINUTE + BURST must stay below Withings' 120
# per rolling minute per application (the remainder covers clock skew between us and Withings).
WITHINGS_RATE_LIMIT_PER_MINUTE = env.int("WITHINGS_RATE_LIMIT_PER_MINUTE", default=112)
WITHINGS_RATE_LIMIT_BURST = env.int("WITHINGS_RATE_LIMIT_BURST", default=4)
# How long a call may wait for a slot of the shared rate limiter before giving up (transient error).
WITHINGS_RATE_LIMIT_MAX_WAIT = env.float("WITHINGS_RATE_LIMIT_MAX_WAIT", default=30.0)

# Ingestion (sync, notifications, back-fill).
WITHINGS_NOTIFY_SECRET = env("WITHINGS_NOTIFY_SECRET", default="")  # empty: derived from SECRET_KEY
WITHINGS_SYNC_MARGIN_SECONDS = env.int("WITHINGS_SYNC_MARGIN_SECONDS", default=300)
# A killed worker's lock expires after this; longer than any task may run (CELERY_TASK_TIME_LIMIT).
WITHINGS_SYNC_LOCK_TTL = env.int("WITHINGS_SYNC_LOCK_TTL", default=330)
WITHINGS_BACKFILL_DAYS_DEFAULT = env.int("WITHINGS_BACKFILL_DAYS_DEFAULT", default=90)
WITHINGS_POLL_HOURS = env.int("WITHINGS_POLL_HOURS", default=6)
# An unfinished back-fill with no step for this long is re-queued (withings.resume_backfills). Longer
# than WITHINGS_SYNC_LOCK_TTL, so the lock of a task that died has expired by then.
WITHINGS_BACKFILL_STALL_SECONDS = env.int("WITHINGS_BACKFILL_STALL_SECONDS", default=600)
