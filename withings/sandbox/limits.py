"""Fault injection and Withings' rate limits (both are pure bookkeeping; the state locks them)."""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Hashable
from dataclasses import asdict, dataclass

FAULT_KINDS = ("601", "522", "http5xx", "slow", "timeout", "401")
ENDPOINTS = ("oauth2", "measure", "notify", "user", "signature")
#: how long a "timeout" fault stalls when no ``delay`` is given.
DEFAULT_TIMEOUT_DELAY = 30.0


@dataclass
class Fault:
    """One injected fault. ``count=None`` means until cleared."""

    id: int
    kind: str
    endpoint: str | None = None
    probability: float = 1.0
    count: int | None = None
    wait_seconds: int = 60
    delay: float = 0.0
    http_status: int = 500
    fired: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class FaultInjector:
    """Holds the active faults; ``pick`` decides (deterministically under a seed) which one fires."""

    def __init__(self, seed: int | None = 0) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - reproducibility, not security
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: str,
        *,
        endpoint: str | None = None,
        probability: float = 1.0,
        count: int | None = None,
        wait_seconds: int = 60,
        delay: float = 0.0,
        http_status: int = 500,
    ) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS}")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if kind == "http5xx" and not 500 <= http_status <= 599:
            raise ValueError("http_status must be a 5xx code")
        if kind == "timeout" and delay <= 0:
            delay = DEFAULT_TIMEOUT_DELAY
        fault = Fault(
            id=next(self._ids),
            kind=kind,
            endpoint=endpoint,
            probability=probability,
            count=count,
            wait_seconds=int(wait_seconds),
            delay=float(delay),
            http_status=int(http_status),
        )
        self._faults.append(fault)
        return fault

    def clear(self) -> None:
        self._faults.clear()

    def active(self) -> list[Fault]:
        return list(self._faults)

    def pick(self, endpoint: str, *, has_bearer: bool) -> Fault | None:
        """The fault that fires for this request, if any (first match in insertion order).

        A "401" fault only applies to calls that carry a Bearer token (data calls).
        """
        for fault in list(self._faults):
            if fault.endpoint is not None and fault.endpoint != endpoint:
                continue
            if fault.kind == "401" and not has_bearer:
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            fault.fired += 1
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
            return fault
        return None


class RateLimiter:
    """Withings' two limits: N calls per rolling minute per application, and no identical call
    (same endpoint, arguments and token) within ``identical_window`` seconds."""

    def __init__(self, per_minute: int | None = 120, identical_window: float = 10.0) -> None:
        self.per_minute = per_minute
        self.identical_window = identical_window
        self._calls: dict[str, deque[float]] = {}
        self._last_identical: dict[Hashable, float] = {}
        self.last_refusal = ""  # "identical" or "per_minute": which rule refused the last call

    def check(self, client_id: str, key: Hashable, now: float) -> int | None:
        """Record the call and return None, or return ``wait_seconds`` (>= 1) if it is refused.

        Refused calls are not recorded, so they do not extend the penalty.
        """
        if self.identical_window > 0:
            last = self._last_identical.get(key)
            if last is not None and now - last < self.identical_window:
                self.last_refusal = "identical"
                return max(1, math.ceil(last + self.identical_window - now))
        if self.per_minute is not None:
            calls = self._calls.setdefault(client_id, deque())
            while calls and calls[0] <= now - 60.0:
                calls.popleft()
            if len(calls) >= self.per_minute:
                self.last_refusal = "per_minute"
                return max(1, math.ceil(calls[0] + 60.0 - now))
            calls.append(now)
        if self.identical_window > 0:
            self._last_identical[key] = now
            if len(self._last_identical) > 10_000:
                self._prune(now)
        return None

    def _prune(self, now: float) -> None:
        stale = [k for k, t in self._last_identical.items() if now - t >= self.identical_window]
        for k in stale:
            del self._last_identical[k]

    def reset(self) -> None:
        self._calls.clear()
        self._last_identical.clear()
