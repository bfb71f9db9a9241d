"""Admin registrations of the measurements app, one module per area."""

from . import admin_exports, admin_imports, admin_monitoring  # noqa: F401
