"""The real Withings sandbox over HTTP, shared with tests/withings."""

from tests.withings.conftest import limiter_redis_url, sandbox  # noqa: F401 (fixtures)
