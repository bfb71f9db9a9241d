"""Admin registrations of the measurements app: each subdomain registers its own."""

from .exports import admin as exports_admin  # noqa: F401
from .imports import admin as imports_admin  # noqa: F401
from .monitoring import admin as monitoring_admin  # noqa: F401
from .monitoring import admin_safety  # noqa: F401
