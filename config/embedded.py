"""The in-process stand-in for a Celery worker and beat (no ``REDIS_URL``: the zero-setup demo).

Tasks run eagerly inside whoever queues them. What a worker and beat would add is done here, in one
daemon thread of the web server's process (so it shares the in-process locks, cache and rate limiter):

- a retry a task asks for (Withings busy, a 5xx, the database locked) runs after its countdown
  instead of escaping into the participant's request (``core.tasking.PortalTask.retry``);
- the beat schedule (``CELERY_BEAT_SCHEDULE``) runs, so the scanners resume what was interrupted:
  unfinished back-fills, pending notifications, export jobs, token refreshes.

Nothing depends on this thread for correctness: every piece of work is recorded in the database first,
and a restarted server (or ``withings_sync``) picks up whatever it had not finished.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections

from core.tasking import set_eager_deferrer

logger = logging.getLogger(__name__)


def _interval(schedule) -> float | None:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, dt.timedelta):
        return schedule.total_seconds()
    return None


class EmbeddedRunner:
    """Deferred retries and periodic tasks, run one at a time on a daemon thread."""

    def __init__(
        self,
        *,
        schedule: dict | None = None,
        first_run_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str, Callable[[], object]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._periodic: list[tuple[str, float]] = []
        start = clock()
        for name, entry in (settings.CELERY_BEAT_SCHEDULE if schedule is None else schedule).items():
            every = _interval(entry["schedule"])
            if every is None:
                logger.warning("embedded runner: %s has no fixed interval; not scheduled", name)
                continue
            self._periodic.append((entry["task"], every))
            self._push(start + min(every, first_run_after), f"beat {name}", self._beat(entry["task"], every))

    # -- scheduling ---------------------------------------------------------------------------

    def _push(self, at: float, label: str, run: Callable[[], object]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (at, next(self._seq), label, run))
            self._cond.notify()

    def defer(self, signature, countdown: float) -> None:
        """Run a task's retry after `countdown` seconds (``PortalTask.retry`` in eager mode)."""
        self._push(self._clock() + max(0.0, countdown), f"retry {signature.task}", signature.apply)

    def _beat(self, task_name: str, every: float) -> Callable[[], object]:
        def run() -> None:
            from config.celery_app import app

            try:
                app.tasks[task_name].apply()
            finally:
                self._push(self._clock() + every, f"beat {task_name}", run)

        return run

    def pending(self) -> list[str]:
        with self._cond:
            return [label for _, _, label, _ in sorted(self._heap)]

    # -- the thread -----------------------------------------------------------------------------

    def start(self) -> EmbeddedRunner:
        from config.celery_app import app

        app.loader.import_default_modules()  # every app's tasks module, as a worker loads them
        set_eager_deferrer(self.defer)
        self._thread = threading.Thread(target=self._loop, name="embedded-runner", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        set_eager_deferrer(None)
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _next_due(self) -> tuple[str, Callable[[], object]] | None:
        with self._cond:
            while not self._stopping:
                if self._heap and self._heap[0][0] <= self._clock():
                    _, _, label, run = heapq.heappop(self._heap)
                    return label, run
                wait = self._heap[0][0] - self._clock() if self._heap else None
                self._cond.wait(timeout=None if wait is None else max(0.0, min(wait, 1.0)))
            return None

    def _loop(self) -> None:
        while (item := self._next_due()) is not None:
            label, run = item
            close_old_connections()
            try:
                run()
            except Exception:
                logger.exception("embedded runner: %s failed", label)
            finally:
                close_old_connections()


_runner: EmbeddedRunner | None = None
_runner_guard = threading.Lock()


def start_embedded_runner() -> EmbeddedRunner | None:
    """Start the process's runner once, when tasks run in-process; None otherwise."""
    global _runner
    if not settings.CELERY_TASK_ALWAYS_EAGER or not settings.EMBEDDED_RUNNER:
        return None
    with _runner_guard:
        if _runner is None:
            _runner = EmbeddedRunner().start()
            logger.info("embedded runner started: retries and the beat schedule run in this process")
    return _runner
