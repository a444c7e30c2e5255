"""The newest frame of each camera, and the counters /diagnostics reports (pure: no ROS).

Subscription callbacks :meth:`FrameSlots.put` and never block or queue: a frame not yet taken is
overwritten (and counted). The worker :meth:`FrameSlots.take` s the newest frame of every camera
that has one, then reports each as :meth:`~FrameSlots.done`, or :meth:`~FrameSlots.dropped`
(stale or bad). :meth:`FrameSlots.stats` reads the counters and rates since its previous call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

HISTORY = 200  # frames in the latency percentiles

@dataclass(frozen=True)
class CameraStats:
    """One camera's counters at one time; rates over the window since the previous read."""

    received: int = 0
    processed: int = 0
    overwritten: int = 0
    stale: int = 0
    bad: int = 0
    input_hz: float = 0.0
    processed_hz: float = 0.0
    silent_s: float | None = None  # seconds since the last frame; None: none yet
    infer_ms: tuple[float, ...] = ()  # the last HISTORY frames
    latency_ms: tuple[float, ...] = ()  # receipt -> published
    input_age_ms: tuple[float, ...] = ()  # header stamp -> published (on the ROS clock)


@dataclass
class _Slot:
    pending: tuple | None = None  # (frame, receipt time)
    last_receipt: float | None = None
    counts: dict = field(default_factory=lambda: dict.fromkeys(
        ("received", "processed", "overwritten", "stale", "bad", "window_received", "window_processed"), 0))
    infer_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    input_age_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))


class FrameSlots:
    """Thread-safe newest-frame-per-camera mailbox with counters. ``clock``: seconds, monotonic."""

    def __init__(self, cameras, clock=time.monotonic):
        self.clock = clock
        self._slots = {c: _Slot() for c in cameras}
        self._cond = threading.Condition()
        self._closed = False
        self._window_start = clock()

    def put(self, camera: str, frame) -> None:
        """Keep ``frame`` as the camera's newest (overwriting one not yet taken)."""
        now = self.clock()
        with self._cond:
            s = self._slots[camera]
            s.counts["received"] += 1
            s.counts["window_received"] += 1
            s.counts["overwritten"] += s.pending is not None
            s.pending, s.last_receipt = (frame, now), now
            self._cond.notify()

    def take(self, timeout: float | None = None) -> list[tuple[str, object, float]]:
        """Wait until a frame is pending; returns [(camera, frame, receipt time)] for every camera
        that has one ([] after :meth:`close` or on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or any(s.pending for s in self._slots.values()), timeout)
            if self._closed:
                return []
            taken = [(c, *s.pending) for c, s in self._slots.items() if s.pending]
            for c, *_ in taken:
                self._slots[c].pending = None
            return taken

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def dropped(self, camera: str, reason: str) -> None:
        """A taken frame was not processed: ``reason`` is 'stale' or 'bad'."""
        with self._cond:
            self._slots[camera].counts[reason] += 1

    def done(self, camera: str, receipt: float, infer_ms: float, input_age_ms: float | None = None) -> None:
        """A taken frame (received at ``receipt``) was published now."""
        latency = (self.clock() - receipt) * 1000
        with self._cond:
            s = self._slots[camera]
            s.counts["processed"] += 1
            s.counts["window_processed"] += 1
            s.infer_ms.append(infer_ms)
            s.latency_ms.append(latency)
            if input_age_ms is not None:
                s.input_age_ms.append(input_age_ms)

    def stats(self) -> dict[str, CameraStats]:
        """Every camera's counters now; rates since the previous call (whose window this resets)."""
        now = self.clock()
        with self._cond:
            dt = max(1e-6, now - self._window_start)
            self._window_start = now
            out = {}
            for cam, s in self._slots.items():
                c = s.counts
                out[cam] = CameraStats(c["received"], c["processed"], c["overwritten"], c["stale"], c["bad"],
                                       c["window_received"] / dt, c["window_processed"] / dt,
                                       None if s.last_receipt is None else now - s.last_receipt,
                                       tuple(s.infer_ms), tuple(s.latency_ms), tuple(s.input_age_ms))
                c["window_received"] = c["window_processed"] = 0
            return out
