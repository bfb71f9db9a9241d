"""Shared pieces of ``SandboxState``: the user record and the attributes every mixin relies on."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEZONE = "Europe/Paris"


def device_id_for(userid: str) -> str:
    """A stable 40-hex device id, so generated data is reproducible across runs."""
    return hashlib.sha1(f"sandbox-bpm-connect:{userid}".encode(), usedforsecurity=False).hexdigest()


def default_device(userid: str, timezone: str, now: int) -> dict[str, Any]:
    """A BPM Connect as ``getdevice`` describes it."""
    deviceid = device_id_for(userid)
    return {
        "type": "Blood Pressure Monitor",
        "battery": "high",
        "model": "BPM Connect",
        "model_id": 45,
        "timezone": timezone,
        "first_session_date": now,
        "last_session_date": now,
        "deviceid": deviceid,
        "hash_deviceid": deviceid,
    }


@dataclass
class User:
    userid: str
    timezone: str
    device: dict[str, Any] | None
    created_at: float
    groups: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: further ``getdevice`` entries after ``device``: other devices, or the same one listed again
    #: (a recorded real answer lists one device several times).
    extra_devices: list[dict[str, Any]] = field(default_factory=list)
    #: client ids whose grant this user revoked (cleared when the user authorizes again).
    revoked_by: set[str] = field(default_factory=set)


class StateBase:
    """Attributes and helpers the mixins share; ``SandboxState.__init__`` sets them all."""

    _lock: threading.RLock
    _clock: Callable[[], float]
    _offset: float
    _users: dict[str, User]
    _counters: Counter[str]
    _log: deque[dict[str, Any]]

    def now(self) -> float:
        """The sandbox's current time: the injected clock plus any ``advance_clock`` offset."""
        return self._clock() + self._offset

    def _user(self, userid: str | int) -> User:
        try:
            return self._users[str(userid)]
        except KeyError:
            raise KeyError(f"unknown sandbox user {userid!r}") from None

    def _bump(self, key: str, n: int = 1) -> None:
        self._counters[key] += n
