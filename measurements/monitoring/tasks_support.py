from __future__ import annotations

from cohorts.models import Study


def active_study_ids() -> list[int]:
    return list(Study.objects.filter(status=Study.Status.ACTIVE).order_by("pk").values_list("pk", flat=True))
