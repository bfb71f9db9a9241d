"""Measure groups: storage, editing, the synthetic generator hook, and ``getmeas``.

Ordering and paging: matching groups are sorted as recorded real answers are — oldest ``created``
first, ties newest ``grpid`` first (in the recorded sample ``created`` and ``modified`` ascend
together; sorting on ``created`` keeps an edited group in place) — and ``offset`` is an index into
that list, computed afresh on every call. ``order`` picks another order to test clients against:
"modified" (oldest ``modified`` first: an edit moves the group to the end), "date_desc" (newest
measurement first) or "shuffled" (a fixed pseudo-random order per ``shuffle_seed``). A group added
between two pages can shift the rest, so a group can show up again on the next page — as with the
real service, clients must treat ``grpid`` as the idempotency key.

Visibility: a group whose ``created`` lies in the future has not reached Withings yet (a late
cuff sync) and is hidden until the clock passes it, unless ``hide_unsynced`` is off.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from pathlib import Path
from typing import Any

from . import generator
from ._base import StateBase
from .errors import invalid_params

GROUP_FIELDS = (
    "grpid",
    "attrib",
    "date",
    "created",
    "modified",
    "category",
    "deviceid",
    "hash_deviceid",
    "measures",
    "modelid",
    "model",
    "comment",
)
FIRST_GRPID = 5_100_000_000
ORDERS = ("created", "modified", "date_desc", "shuffled")
MANUAL_ATTRIBS = (2, 4)
BP_TYPES = {9, 10}


def _int_param(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid_params(f"invalid {name}") from None


class MeasuresMixin(StateBase):
    page_size: int
    more_as_bool: bool
    hide_unsynced: bool
    shuffle_seed: int
    _order: str

    @property
    def order(self) -> str:
        """How getmeas sorts matching groups before paging (one of ``ORDERS``)."""
        return self._order

    @order.setter
    def order(self, value: str) -> None:
        if value not in ORDERS:
            raise ValueError(f"unknown order {value!r}; expected one of {', '.join(ORDERS)}")
        self._order = value

    def _sort_key(self, group: dict[str, Any]) -> tuple:
        if self._order == "modified":
            return (group["modified"], -group["grpid"])
        if self._order == "date_desc":
            return (-group["date"], -group["grpid"])
        if self._order == "shuffled":
            digest = hashlib.sha256(f"{self.shuffle_seed}:{group['grpid']}".encode()).digest()
            return (digest, group["grpid"])
        return (group["created"], -group["grpid"])

    _grpid_owner: dict[int, str]
    _grpids: itertools.count[int]

    def _next_grpid(self) -> int:
        while True:
            grpid = next(self._grpids)
            if grpid not in self._grpid_owner:
                return grpid

    def _normalise(self, raw: dict[str, Any], userid: str, now: int) -> dict[str, Any]:
        group = copy.deepcopy(raw)
        if group.get("grpid") is None:
            group["grpid"] = self._next_grpid()
        group["grpid"] = int(group["grpid"])
        group.setdefault("attrib", 0)
        group.setdefault("date", now)
        group.setdefault("created", now)
        group.setdefault("modified", group["created"])
        group.setdefault("category", 1)
        user = self._user(userid)
        device = user.device or {}
        for key, dev_key in (("deviceid", "deviceid"), ("hash_deviceid", "hash_deviceid")):
            group.setdefault(key, device.get(dev_key) if group["attrib"] != 2 else None)
        group.setdefault("measures", [])
        if "modelid" not in group and "model_id" in group:
            group["modelid"] = group.pop("model_id")
        from_cuff = (
            group["attrib"] not in MANUAL_ATTRIBS
            and group["deviceid"] is not None
            and group["deviceid"] == device.get("deviceid")
            and {m.get("type") for m in group["measures"] if isinstance(m, dict)} >= BP_TYPES
        )
        group.setdefault("modelid", device.get("model_id") if from_cuff else None)
        group.setdefault("model", device.get("model") if from_cuff else None)
        if not group.get("comment"):
            group["comment"] = None
        ordered = {k: group[k] for k in GROUP_FIELDS}
        ordered.update({k: v for k, v in group.items() if k not in ordered})
        return ordered

    def add_groups(
        self, userid: str, groups: list[dict[str, Any]], *, renumber_conflicts: bool = False
    ) -> list[dict[str, Any]]:
        """Store raw getmeas groups (missing fields get defaults; missing grpid → a new one).

        A grpid already owned by another user raises ``ValueError`` unless ``renumber_conflicts``,
        which gives the group a fresh grpid. Re-adding a grpid of the same user replaces it.
        Returns copies of the stored groups.
        """
        with self._lock:
            user = self._user(userid)
            now = int(self.now())
            stored = []
            for raw in groups:
                group = self._normalise(raw, user.userid, now)
                owner = self._grpid_owner.get(group["grpid"])
                if owner is not None and owner != user.userid:
                    if not renumber_conflicts:
                        raise ValueError(f"grpid {group['grpid']} belongs to user {owner}")
                    group["grpid"] = self._next_grpid()
                user.groups[group["grpid"]] = group
                self._grpid_owner[group["grpid"]] = user.userid
                stored.append(copy.deepcopy(group))
            return stored

    def load_fixture_groups(self, userid: str, path: str | Path) -> int:
        """Load a measurement_list.json-style file (a bare list, or a getmeas envelope)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("body", data).get("measuregrps", [])
        return len(self.add_groups(userid, data, renumber_conflicts=True))

    def modify_group(self, userid: str, grpid: int, **changes: Any) -> dict[str, Any]:
        """Edit a group as if upstream changed it (``modified`` becomes now unless given)."""
        with self._lock:
            group = self._user(userid).groups[int(grpid)]
            changes = copy.deepcopy(changes)
            changes.pop("grpid", None)
            group.update(changes)
            if "modified" not in changes:
                group["modified"] = int(self.now())
            return copy.deepcopy(group)

    def delete_group(self, userid: str, grpid: int) -> None:
        """Remove a group entirely (it simply stops appearing in getmeas)."""
        with self._lock:
            self._user(userid).groups.pop(int(grpid))
            self._grpid_owner.pop(int(grpid), None)

    def groups(self, userid: str) -> list[dict[str, Any]]:
        """Copies of all stored groups of a user, newest ``date`` first (synced or not)."""
        with self._lock:
            user = self._user(userid)
            ordered = sorted(user.groups.values(), key=lambda g: (-g["date"], -g["grpid"]))
            return copy.deepcopy(ordered)

    def generate_readings(
        self, userid: str, *, start: float, days: int, seed: int, **options: Any
    ) -> list[dict[str, Any]]:
        """Add ``days`` days of synthetic readings (see ``generator.generate_groups`` for
        ``options``: profile, missed_day_rate, manual_rate, crisis_rate, late_sync_rate,
        upload_delay_hours, …).

        Groups whose ``created`` (sync time) is still in the future stay hidden from getmeas
        until the clock gets there or ``cuff_sync()`` delivers them.
        """
        with self._lock:
            user = self._user(userid)
            device = user.device or {}
            groups = generator.generate_groups(
                start=start,
                days=days,
                seed=seed,
                next_grpid=self._next_grpid,
                deviceid=device.get("deviceid"),
                timezone=user.timezone,
                **options,
            )
            return self.add_groups(userid, groups)

    def _visible(self, group: dict[str, Any], now: float) -> bool:
        return not self.hide_unsynced or group["created"] <= now

    def getmeas(self, userid: str, params: dict[str, str]) -> dict[str, Any]:
        """The body of ``POST /measure action=getmeas`` for this user."""
        raw_types = params.get("meastypes") or params.get("meastype") or ""
        try:
            types = {int(t) for t in raw_types.split(",") if t.strip()}
        except ValueError:
            raise invalid_params("invalid meastypes") from None
        category = _int_param(params, "category") or 1
        startdate = _int_param(params, "startdate")
        enddate = _int_param(params, "enddate")
        lastupdate = _int_param(params, "lastupdate")
        offset = _int_param(params, "offset") or 0
        if category not in (1, 2):
            raise invalid_params("invalid category")
        if offset < 0:
            raise invalid_params("invalid offset")
        with self._lock:
            user = self._user(userid)
            now = self.now()
            matching = []
            for g in sorted(user.groups.values(), key=self._sort_key):
                if not self._visible(g, now) or g["category"] != category:
                    continue
                if startdate is not None and g["date"] < startdate:
                    continue
                if enddate is not None and g["date"] > enddate:
                    continue
                if lastupdate is not None and g["modified"] < lastupdate:
                    continue
                if types:
                    measures = [m for m in g["measures"] if m.get("type") in types]
                    if not measures:
                        continue
                    g = {**g, "measures": measures}
                matching.append(g)
            page = copy.deepcopy(matching[offset : offset + self.page_size])
            more = offset + self.page_size < len(matching)
            return {
                "updatetime": int(now),
                "timezone": user.timezone,
                "measuregrps": page,
                "more": more if self.more_as_bool else int(more),
                "offset": offset + len(page) if more else 0,
            }
