"""Settings for every PostgreSQL session the portal opens.

**JIT off.** PostgreSQL compiles a query with LLVM once its estimated cost passes `jit_above_cost`.
The monitoring pages' queries (one correlated subquery per column, thousands of participants) are
estimated far above that yet run in ~0.2 s, and compiling them took ~1.2 s more: the worklist at
10,000 participants took 1.6 s with JIT and 0.34 s without (bench/monitoring_changelist.py). The
export's formatting COPY is faster without it too (1M rows: 319k → 491k rows/s). Set per connection
(one statement when it opens) rather than as a libpq startup option, which poolers such as PgBouncer
refuse, or ALTER DATABASE, which needs the database's owner.
"""

from __future__ import annotations

SESSION_SETTINGS = "SET jit = off"


def apply_session_settings(sender, connection, **kwargs) -> None:  # noqa: ARG001 — signal receiver
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(SESSION_SETTINGS)
