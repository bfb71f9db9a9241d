"""Suite-wide fixtures. Integration tests need PostgreSQL and Redis; they fail (never skip) without."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

# Fixtures and hooks shared across directories: the Withings sandbox (`sandbox`, `limiter_redis_url`),
# the SMTP server and SMS sandbox of messaging (`smtp_server`, `sms_gateway`, `sms_gateway_live`),
# the notice about tests skipped for want of ../shared/fixtures, and pytester for testing that notice.
pytest_plugins = [
    "tests.fixtures.withings",
    "tests.fixtures.messaging",
    "tests.fixtures.shared_data",
    "pytester",
]


def pytest_configure(config):
    db = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in db and not os.environ.get("PORTAL_ALLOW_SQLITE_TESTS"):
        raise pytest.UsageError(
            "The test suite runs against PostgreSQL: set DATABASE_URL (`make test` and .ci/run do)."
        )


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Each test starts with an empty cache (allauth rate limits, TOTP replay keys, heartbeat)."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_url() -> str:
    url = settings.REDIS_URL
    if not url:
        pytest.fail("REDIS_URL is not set: integration tests need Redis (`make test` sets it).")
    return url
