"""A manually driven clock for tests: pass ``FakeClock()`` as ``SandboxState(now=...)``."""

from __future__ import annotations

import threading
import time


class FakeClock:
    """Callable returning a float timestamp that only moves when told to (thread-safe)."""

    def __init__(self, start: float | None = None) -> None:
        self._t = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = float(t)
