"""Celery: Redis broker, JSON only, bounded tasks, the queues in priority order and the beat schedule.

Every task of ours is idempotent (unique keys and upserts), so acks_late + reject_on_worker_lost: a
killed worker's task is redelivered, never lost."""

from kombu import Queue

from ._env import REDIS_URL, env

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# In-process mode: the dev server runs retries and the beat schedule on a thread (config.embedded).
EMBEDDED_RUNNER = env.bool("EMBEDDED_RUNNER", default=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Workers log through Django's LOGGING (redaction, JSON lines with the task id), not Celery's own handler.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis redelivers an unacknowledged task only after this; no countdown/ETA of ours exceeds it.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=1800),
    # The workers consume the queues in the order of WITHINGS_QUEUES.
    "queue_order_strategy": "priority",
}

# Queues: notifications first, then everything else, then the back-fill (one page per task).
WITHINGS_QUEUES = ("withings_notify", "default", "withings_backfill")
CELERY_TASK_DEFAULT_QUEUE = "default"
# A worker without -Q consumes every declared queue, in this order.
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in WITHINGS_QUEUES]
CELERY_TASK_ROUTES = {
    "withings.process_notification": {"queue": "withings_notify"},
    "withings.sync_connection": {"queue": "withings_notify"},
    "withings.backfill_step": {"queue": "withings_backfill"},
    "withings.poll_connection": {"queue": "withings_backfill"},
}

CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "portal.heartbeat", "schedule": 30.0},
    "withings-refresh-due-connections": {"task": "withings.refresh_due_connections", "schedule": 300.0},
    "withings-sweep-notifications": {"task": "withings.sweep_notifications", "schedule": 120.0},
    "withings-resume-backfills": {"task": "withings.resume_backfills", "schedule": 60.0},
    "withings-safety-net-poll": {"task": "withings.poll_all", "schedule": 3600.0},
    "withings-subscriptions-daily": {"task": "withings.check_subscriptions", "schedule": 86400.0},
    "withings-devices-daily": {"task": "withings.refresh_all_devices", "schedule": 86400.0},
    # Monitoring: zero rows for missed days at night, alerts every hour.
    "measurements-monitoring-nightly": {"task": "measurements.monitoring_nightly", "schedule": 86400.0},
    "measurements-resume-exports": {"task": "measurements.resume_exports", "schedule": 300.0},
    # Messaging: whatever is due (rules' messages, retries after transient errors), every minute.
    "messaging-dispatch-due": {"task": "messaging.dispatch_due", "schedule": 60.0},
    "measurements-evaluate-alerts": {"task": "measurements.evaluate_alerts", "schedule": 3600.0},
    # Every time-driven rule (core.ticking: participant reminders and prompts), as `manage.py tick`.
    "portal-tick": {"task": "portal.tick", "schedule": 300.0},
    # REDCap: queue a push for each project on a schedule whose interval has passed.
    "redcap-push-due": {"task": "redcap.push_due", "schedule": 900.0},
}
# /healthz/ reports the worker down when beat's heartbeat task has not run for this many seconds.
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=120)
