"""Operations: the `/metrics` endpoint, log format, optional Sentry and the version shown in
`/healthz/` and export manifests."""

import tomllib

from ._env import BASE_DIR, env


def _project_version() -> str:
    with (BASE_DIR / "pyproject.toml").open("rb") as fh:
        return str(tomllib.load(fh)["project"]["version"])


# The release: pyproject's version unless the build says more (e.g. "0.1.0+git.1ff88ed").
PORTAL_VERSION = env("PORTAL_VERSION", default="") or _project_version()

# /metrics: a bearer token (Authorization: Bearer <METRICS_TOKEN>) or a client address in
# METRICS_ALLOWED_IPS (comma-separated addresses or CIDR networks, matched against REMOTE_ADDR: the
# scraper must reach the web container directly, not through the proxy). Neither set: closed (403).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=[])
# Redis hashes of the event counters (core.metrics); one prefix per installation sharing a Redis.
METRICS_KEY_PREFIX = env("METRICS_KEY_PREFIX", default="portal:metrics")

# Sentry (optional): errors are sent with the same scrubbing as the logs (config.observability).
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="production")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)

if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(
        dsn=SENTRY_DSN,
        environment=SENTRY_ENVIRONMENT,
        release=PORTAL_VERSION,
        traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE,
    )
