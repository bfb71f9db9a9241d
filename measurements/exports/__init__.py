"""Per-study export packages: columns and dictionary, streaming writers, FHIR, zip + manifest.

Who may export: `EXPORT_ROLES` (data managers of the study; site-restricted ones get their site's
rows only). There is no per-study setting for other roles yet: it would need a field on Study.
"""

from cohorts.models import Role

EXPORT_ROLES = frozenset({Role.DATA_MANAGER})
