"""``SandboxState``: everything the fake Withings knows, in memory, behind one ``RLock``.

Split by concern into mixins: ``_oauth`` (clients, codes, tokens, signed calls), ``_measures``
(groups, generator, getmeas), ``_notify`` (subscriptions, cuff sync, deliveries). This module
adds users and devices, fault injection, rate limiting, stats and the request log.

Time comes from the injectable ``now`` callable (plus ``advance_clock`` offsets), so tests can
move across the 30 s code lifetime, the 3 h access-token lifetime and the 8 h refresh grace.
"""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from typing import Any

from . import api
from ._base import DEFAULT_TIMEZONE, User, default_device
from ._measures import FIRST_GRPID, MeasuresMixin
from ._notify import NotifyMixin
from ._oauth import OAuthMixin
from .limits import Fault, FaultInjector, RateLimiter

FIRST_USERID = 10_000_001


class SandboxState(OAuthMixin, MeasuresMixin, NotifyMixin):
    """The fake Withings' state. All public methods are thread-safe.

    Args:
        page_size: groups per getmeas page (Withings does not document its own).
        auto_approve: the authorize page redirects at once instead of showing Allow/Deny.
        rate_limit_per_minute: calls per app per rolling minute before status 601 (None: off).
        identical_call_window: seconds within which an identical call gets 601 (0: off).
        now: the clock (unix seconds as float).
        fault_seed: seed of the fault-probability RNG (reproducible fault patterns).
        more_as_bool: send getmeas ``more`` as true/false instead of 1/0.
        order: how getmeas sorts groups before paging: "created" (as real answers: oldest
            ``created`` first), "modified", "date_desc" or "shuffled" (see ``_measures``).
        shuffle_seed: which fixed permutation "shuffled" serves.
        hide_unsynced: hide groups whose ``created`` is in the future (not yet synced).
        head_timeout / delivery_timeout: seconds for the subscribe HEAD check / deliveries.
    """

    def __init__(
        self,
        *,
        page_size: int = 100,
        auto_approve: bool = False,
        rate_limit_per_minute: int | None = 120,
        identical_call_window: float = 10.0,
        now: Callable[[], float] = time.time,
        fault_seed: int | None = 0,
        more_as_bool: bool = False,
        order: str = "created",
        shuffle_seed: int = 0,
        hide_unsynced: bool = True,
        head_timeout: float = 2.0,
        delivery_timeout: float = 2.0,
    ) -> None:
        self._lock = threading.RLock()
        self._clock = now
        self._offset = 0.0
        self.page_size = page_size
        self.auto_approve = auto_approve
        self.more_as_bool = more_as_bool
        self.order = order
        self.shuffle_seed = shuffle_seed
        self.hide_unsynced = hide_unsynced
        self.head_timeout = head_timeout
        self.delivery_timeout = delivery_timeout
        self._faults = FaultInjector(fault_seed)
        self._limiter = RateLimiter(rate_limit_per_minute, identical_call_window)
        self._clients = {}
        self._init_data()

    def _init_data(self) -> None:
        self._users: dict[str, User] = {}
        self._userids = itertools.count(FIRST_USERID)
        self._grpids = itertools.count(FIRST_GRPID)
        self._grpid_owner = {}
        self._codes = {}
        self._access = {}
        self._refresh = {}
        self._nonces = {}
        self._subs = []
        self._deliveries = []
        self._counters: Counter[str] = Counter()
        self._log: deque[dict[str, Any]] = deque(maxlen=2000)
        self._demo_userid: str | None = None

    def reset(self, *, keep_clients: bool = True) -> None:
        """Forget users, data, tokens, subscriptions, faults, limits and stats."""
        with self._lock:
            self._init_data()
            self._faults.clear()
            self._limiter.reset()
            if not keep_clients:
                self._clients.clear()

    # -- configuration -------------------------------------------------------------------

    @property
    def rate_limit_per_minute(self) -> int | None:
        return self._limiter.per_minute

    @rate_limit_per_minute.setter
    def rate_limit_per_minute(self, value: int | None) -> None:
        with self._lock:
            self._limiter.per_minute = value

    @property
    def identical_call_window(self) -> float:
        return self._limiter.identical_window

    @identical_call_window.setter
    def identical_call_window(self, value: float) -> None:
        with self._lock:
            self._limiter.identical_window = value

    def advance_clock(self, seconds: float) -> float:
        """Move sandbox time forward (works with any clock, e.g. for a standalone demo)."""
        with self._lock:
            self._offset += seconds
            return self.now()

    # -- users and devices ---------------------------------------------------------------

    def create_user(
        self,
        userid: str | None = None,
        *,
        timezone: str = DEFAULT_TIMEZONE,
        device: dict[str, Any] | None = None,
        with_device: bool = True,
    ) -> str:
        """Create a Withings user; returns its userid (a string of digits unless given).

        The user owns a BPM Connect (``device`` overrides its fields) unless ``with_device`` is
        false. Creating an existing userid raises ``ValueError``.
        """
        with self._lock:
            if userid is None:
                userid = str(next(self._userids))
                while userid in self._users:
                    userid = str(next(self._userids))
            userid = str(userid)
            if userid in self._users:
                raise ValueError(f"user {userid} exists")
            dev = None
            if with_device:
                dev = {**default_device(userid, timezone, int(self.now())), **(device or {})}
            self._users[userid] = User(userid, timezone, dev, self.now())
            return userid

    def users(self) -> list[str]:
        with self._lock:
            return list(self._users)

    def has_user(self, userid: str) -> bool:
        with self._lock:
            return str(userid) in self._users

    def user_info(self, userid: str) -> dict[str, Any]:
        """A JSON-able summary of a user (for the control API and tests)."""
        with self._lock:
            user = self._user(userid)
            now = self.now()
            return {
                "userid": user.userid,
                "timezone": user.timezone,
                "device": copy.deepcopy(user.device),
                "groups": len(user.groups),
                "pending_groups": sum(1 for g in user.groups.values() if g["created"] > now),
                "revoked_by": sorted(user.revoked_by),
                "subscriptions": self.subscriptions(user.userid),
                "valid_refresh_tokens": len(self.valid_refresh_tokens(user.userid)),
            }

    def set_device(self, userid: str, **changes: Any) -> dict[str, Any]:
        """Change the user's device (e.g. ``battery="low"``, ``last_session_date=...``)."""
        with self._lock:
            user = self._user(userid)
            if user.device is None:
                user.device = default_device(user.userid, user.timezone, int(self.now()))
            user.device.update(changes)
            return copy.deepcopy(user.device)

    def add_device(self, userid: str, device: dict[str, Any]) -> list[dict[str, Any]]:
        """List one more ``getdevice`` entry after the user's cuff (another device, or the same
        one again with other fields, as a recorded real answer does); returns all entries."""
        with self._lock:
            self._user(userid).extra_devices.append(copy.deepcopy(device))
            return self.getdevice(userid)["devices"]

    def getdevice(self, userid: str) -> dict[str, Any]:
        """The body of ``POST /v2/user action=getdevice``."""
        with self._lock:
            user = self._user(userid)
            devices = [user.device] if user.device else []
            return {"devices": copy.deepcopy(devices + user.extra_devices)}

    def demo_user(self) -> str:
        """The user behind ``mode=demo``: created once, with 30 days of synthetic readings."""
        with self._lock:
            if self._demo_userid is None:
                self._demo_userid = self.create_user()
                self.generate_readings(self._demo_userid, start=self.now() - 30 * 86_400, days=31, seed=4242)
            return self._demo_userid

    # -- faults and limits ---------------------------------------------------------------

    def set_fault(
        self,
        kind: str,
        *,
        endpoint: str | None = None,
        probability: float = 1.0,
        count: int | None = None,
        wait_seconds: int = 60,
        delay: float = 0.0,
        http_status: int = 500,
    ) -> dict[str, Any]:
        """Inject a fault: "601" (with ``wait_seconds``), "522", "http5xx" (``http_status``),
        "slow" (sleep ``delay``, then answer normally), "timeout" (sleep ``delay`` — 30 s if 0 —
        then answer status 522 without doing anything), "401" (Bearer calls only).

        ``endpoint``: "oauth2", "measure", "notify", "user", "signature" or None for all.
        ``count``: fire that many times, then disappear (None: until ``clear_faults``).
        Several faults may be active; the first matching one that fires wins.
        """
        with self._lock:
            fault = self._faults.add(
                kind,
                endpoint=endpoint,
                probability=probability,
                count=count,
                wait_seconds=wait_seconds,
                delay=delay,
                http_status=http_status,
            )
            return fault.as_dict()

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.as_dict() for f in self._faults.active()]

    def pick_fault(self, endpoint: str, *, has_bearer: bool) -> Fault | None:
        with self._lock:
            fault = self._faults.pick(endpoint, has_bearer=has_bearer)
            if fault is not None:
                self._bump(f"fault.{fault.kind}")
            return fault

    def rate_check(self, client_id: str, key: Hashable) -> int | None:
        """Count a call of ``client_id``; return ``wait_seconds`` if it must get 601."""
        with self._lock:
            wait = self._limiter.check(client_id, key, self.now())
            if wait is not None:
                self._bump("rate_limited")
                self._bump(f"rate_limited.{self._limiter.last_refusal}")
            return wait

    # -- the API, stats, log -------------------------------------------------------------

    def call(
        self,
        path: str,
        params: dict[str, str],
        bearer: str | None = None,
        *,
        sleep: Callable[[float], Any] | None = None,
    ) -> api.ApiResult:
        """Answer a Withings API request without HTTP (``path`` like "/measure")."""
        return api.call(self, path, params, bearer, sleep=sleep)

    def record(self, entry: dict[str, Any]) -> None:
        """Log one API request (the entry must not hold secrets) and count it."""
        with self._lock:
            entry = {"t": self.now(), **entry}
            self._log.append(entry)
            self._bump(f"{entry['endpoint']}.{entry['action'] or '-'}")
            if entry.get("status") == 601:
                self._bump("sent_601")
            if entry.get("status") not in (None, 0):
                self._bump(f"status.{entry['status']}")
            if entry.get("http_status", 200) != 200:
                self._bump(f"http.{entry['http_status']}")

    @property
    def stats(self) -> dict[str, int]:
        """Counters: "<endpoint>.<action>" per request, "refreshes", "codes_exchanged",
        "sent_601", "rate_limited" (with "rate_limited.per_minute" or "rate_limited.identical"),
        "fault.<kind>", "deliveries", "deliveries_failed", "head_checks", "revocations",
        "status.<n>" …"""
        with self._lock:
            return dict(self._counters)

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._log))

    def snapshot(self) -> dict[str, Any]:
        """Everything JSON-able: config, stats, users, subscriptions, deliveries, faults, log."""
        with self._lock:
            return {
                "now": self.now(),
                "config": {
                    "page_size": self.page_size,
                    "auto_approve": self.auto_approve,
                    "more_as_bool": self.more_as_bool,
                    "order": self.order,
                    "shuffle_seed": self.shuffle_seed,
                    "hide_unsynced": self.hide_unsynced,
                    "rate_limit_per_minute": self.rate_limit_per_minute,
                    "identical_call_window": self.identical_call_window,
                },
                "clients": self.client_ids(),
                "stats": self.stats,
                "users": [self.user_info(u) for u in self._users],
                "subscriptions": self.subscriptions(),
                "deliveries": self.deliveries(),
                "faults": self.faults(),
                "log": self.request_log(),
            }
