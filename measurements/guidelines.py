"""Blood-pressure guideline profiles: a study picks one (`StudyProtocol.guideline`); its category
labels, thresholds and home threshold are what the participant page, the monitoring pages, the
exports (column `guideline_category`, the data dictionary, the manifest) and FHIR show.

Each profile's categories are ordered from the lowest; a reading takes the highest category whose
systolic OR diastolic threshold it reaches (≥, or > where the guideline says "above"). Implausible
readings (`quality`) are not classified.

- ACC/AHA 2017 and 2025: normal < 120 and < 80; elevated 120–129 and < 80; stage 1 130–139 or 80–89;
  stage 2 ≥ 140 or ≥ 90; severe (2017: "hypertensive crisis") > 180 or > 120. Home threshold 130/80.
- ESH 2023: office grades — optimal < 120 and < 80; normal 120–129 or 80–84; high normal 130–139 or
  85–89; grade 1 140–159 or 90–99; grade 2 160–179 or 100–109; grade 3 ≥ 180 or ≥ 110. Home
  hypertension ≥ 135/85.
- ESC 2024: non-elevated < 120 and < 70; elevated 120–139 or 70–89; hypertension ≥ 140 or ≥ 90. Home
  hypertension ≥ 135/85.

`acc_aha_category` (classification) stays the 2017 ACC/AHA category of the export's
`acc_aha_category` column and of the daily rollup's category counts, whatever the profile.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from typing import Any

from django.db import models
from django.db.models import Q


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    systolic: int | None = None  # threshold reached: ≥ (or > when `above`)
    diastolic: int | None = None
    above: bool = False

    def reached(self, systolic: Decimal | int, diastolic: Decimal | int) -> bool:
        def over(value, threshold) -> bool:
            return threshold is not None and (value > threshold if self.above else value >= threshold)

        return over(systolic, self.systolic) or over(diastolic, self.diastolic)

    def sql(self, sys: str, dia: str) -> str:
        op = ">" if self.above else ">="
        parts = [
            f"{col} {op} {limit}" for col, limit in ((sys, self.systolic), (dia, self.diastolic)) if limit
        ]
        return " OR ".join(parts) or "TRUE"

    def rule(self) -> str:
        op = ">" if self.above else "≥"
        parts = [
            f"{name} {op} {limit}"
            for name, limit in (("systolic", self.systolic), ("diastolic", self.diastolic))
            if limit
        ]
        return " or ".join(parts) or "below every other category"


@dataclass(frozen=True)
class Guideline:
    key: str
    name: str
    version: str
    categories: tuple[Category, ...]  # lowest first
    home_systolic: int
    home_diastolic: int

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.categories)

    @property
    def labels(self) -> dict[str, str]:
        return {c.code: c.label for c in self.categories}

    def category(self, systolic, diastolic) -> str | None:
        if systolic is None or diastolic is None:
            return None
        for category in reversed(self.categories):
            if category.reached(systolic, diastolic):
                return category.code
        return self.categories[0].code

    def category_sql(self, sys: str, dia: str) -> str:
        whens = " ".join(f"WHEN {c.sql(sys, dia)} THEN '{c.code}'" for c in reversed(self.categories[1:]))
        return f"CASE {whens} ELSE '{self.categories[0].code}' END"

    def above_home(self, systolic, diastolic) -> bool:
        return systolic >= self.home_systolic or diastolic >= self.home_diastolic

    def described(self) -> dict[str, Any]:
        """For the export manifest and the data dictionary."""
        return {
            "key": self.key,
            "name": self.name,
            "version": self.version,
            "categories": [{"code": c.code, "label": c.label, "rule": c.rule()} for c in self.categories],
            "home_threshold_mmhg": f"{self.home_systolic}/{self.home_diastolic}",
        }

    def summary(self) -> str:
        return "; ".join(f"{c.code} ({c.label}): {c.rule()}" for c in self.categories)


_ACC_AHA = (
    Category("normal", "Normal"),
    Category("elevated", "Elevated", 120),
    Category("stage_1", "Stage 1", 130, 80),
    Category("stage_2", "Stage 2", 140, 90),
)
PROFILES: dict[str, Guideline] = {
    g.key: g
    for g in (
        Guideline(
            "acc_aha_2017", "ACC/AHA", "2017",
            (*_ACC_AHA, Category("crisis", "Crisis", 180, 120, above=True)), 130, 80,
        ),
        Guideline(
            "acc_aha_2025", "ACC/AHA", "2025",
            (*_ACC_AHA, Category("severe", "Severe hypertension", 180, 120, above=True)), 130, 80,
        ),
        Guideline(
            "esh_2023", "ESH", "2023",
            (
                Category("optimal", "Optimal"),
                Category("normal", "Normal", 120, 80),
                Category("high_normal", "High normal", 130, 85),
                Category("grade_1", "Grade 1 hypertension", 140, 90),
                Category("grade_2", "Grade 2 hypertension", 160, 100),
                Category("grade_3", "Grade 3 hypertension", 180, 110),
            ),
            135, 85,
        ),
        Guideline(
            "esc_2024", "ESC", "2024",
            (
                Category("non_elevated", "Non-elevated"),
                Category("elevated", "Elevated", 120, 70),
                Category("hypertension", "Hypertension", 140, 90),
            ),
            135, 85,
        ),
    )
}  # fmt: skip
DEFAULT = "acc_aha_2017"


class GuidelineChoice(models.TextChoices):
    ACC_AHA_2017 = "acc_aha_2017", "ACC/AHA 2017"
    ACC_AHA_2025 = "acc_aha_2025", "ACC/AHA 2025"
    ESH_2023 = "esh_2023", "ESH 2023"
    ESC_2024 = "esc_2024", "ESC 2024"


def guideline(key: str | None) -> Guideline:
    return PROFILES.get(key or DEFAULT, PROFILES[DEFAULT])


def guideline_filters(profile: Guideline) -> list[tuple[Category, Q]]:
    """Each category with the Q of the readings it holds (the highest reached wins)."""
    result = []
    higher: Q | None = None
    for category in reversed(profile.categories):
        op = "gt" if category.above else "gte"
        parts = [
            Q(**{f"{field}__{op}": limit})
            for field, limit in (("systolic", category.systolic), ("diastolic", category.diastolic))
            if limit is not None
        ]
        reached = reduce(operator.or_, parts) if parts else None
        holds = reached if reached is not None else Q()
        if higher is not None:
            holds &= ~higher
        result.append((category, holds))
        if reached is not None:
            higher = reached if higher is None else higher | reached
    return list(reversed(result))


def all_codes() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for profile in PROFILES.values():
        seen.update(dict.fromkeys(profile.codes))
    return tuple(seen)
