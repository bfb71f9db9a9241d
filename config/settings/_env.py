"""What every settings module reads: the environment, the project root and the Redis URL (the cache,
the Celery broker, the Withings rate limiter and the sync locks all use it)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

REDIS_URL = env("REDIS_URL", default="")
