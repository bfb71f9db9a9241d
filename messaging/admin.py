"""The messaging app's admin pages (each module registers its own)."""

from . import admin_rules  # noqa: F401 — reminder rules and wording
