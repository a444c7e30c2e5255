"""The newest frame of each camera, and the counters /diagnostics reports (pure: no ROS).

Subscription callbacks :meth:`FrameSlots.put` and never block or queue: a frame not yet taken is
overwritten (and counted); a publisher sequence number, where the middleware gives one, counts the
frames lost before they reached the node. The worker :meth:`FrameSlots.take` s the newest frame of
every camera that has one, then reports each as :meth:`~FrameSlots.done`, or
:meth:`~FrameSlots.dropped` (stale, future or bad), and any :meth:`~FrameSlots.error` (an exception
while processing) or :meth:`~FrameSlots.flagged` problem (a zero stamp). :meth:`FrameSlots.stats`
reads the counters and rates since its previous call. :func:`stamp_verdict` is the header-stamp rule.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

HISTORY = 200  # frames in the latency percentiles
CLOCK_DISAGREEMENT_MS = 60_000.0  # |stamp -> now| beyond this is no latency: the clocks differ

@dataclass(frozen=True)
class CameraStats:
    """One camera's counters at one time; rates over the window since the previous read."""

    received: int = 0
    processed: int = 0
    overwritten: int = 0
    stale: int = 0
    bad: int = 0
    future: int = 0  # dropped: stamped too far ahead of the node's clock
    zero_stamp: int = 0  # processed (or dropped as stale with max_input_age_ms) with a zero stamp
    errors: int = 0  # exceptions while processing (segmentation, publishing, costmap)
    lost: int = 0  # gaps in the publisher's sequence numbers (lost in transport), where known
    window_errors: int = 0  # the same, since the previous read
    window_warnings: int = 0  # future + zero_stamp + lost since the previous read
    last_problem: str = ""  # the newest error, drop or flag, with its reason
    input_hz: float = 0.0
    processed_hz: float = 0.0
    silent_s: float | None = None  # seconds since the last frame; None: none yet
    infer_ms: tuple[float, ...] = ()  # the last HISTORY frames
    latency_ms: tuple[float, ...] = ()  # receipt -> published
    input_age_ms: tuple[float, ...] = ()  # header stamp -> published (on the ROS clock)
    skipped: tuple[tuple[str, int], ...] = ()  # (output, frames not computed: disabled or nobody subscribed)
    clock_note: str = ""  # since the previous read: why input ages were not measured (clocks disagree)


COUNTERS = ("received", "processed", "overwritten", "stale", "bad", "future", "zero_stamp", "errors", "lost")
_WARNINGS = ("future", "zero_stamp", "lost")


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (rclpy or rosbags alike) -> integer nanoseconds."""
    return stamp.sec * 10**9 + stamp.nanosec


def stamp_verdict(stamp_ns: int, now_ns: int, max_age_ms: float, max_ahead_ms: float):
    """The header-stamp rule: (drop reason or None, flag or None, age in ms or None).

    A zero stamp is flagged 'zero_stamp' (its age is unknown: dropped as 'stale' when
    ``max_age_ms`` > 0, else processed); a stamp more than ``max_ahead_ms`` ahead of ``now_ns`` is
    dropped as 'future'; one older than ``max_age_ms`` as 'stale' (0 = that check off). With no
    clock yet (``now_ns`` 0: ``use_sim_time`` before /clock) only the zero check applies."""
    if stamp_ns == 0:
        return ("stale" if max_age_ms > 0 else None), "zero_stamp", None
    if now_ns <= 0:
        return None, None, None
    age = (now_ns - stamp_ns) / 1e6
    if max_ahead_ms > 0 and -age > max_ahead_ms:
        return "future", None, age
    if max_age_ms > 0 and age > max_age_ms:
        return "stale", None, age
    return None, None, age


def input_age(stamp_ns: int, now_ns: int) -> tuple[float | None, str]:
    """(age in ms, note) of a published frame: header stamp -> the node's clock now. The age is None,
    with a note saying why, when it would be meaningless: a zero stamp, the node's clock at 0
    (``use_sim_time`` before the first /clock), or stamp and clock more than
    :data:`CLOCK_DISAGREEMENT_MS` apart (sim time vs a camera on wall time, a bag replayed without
    /clock) - no processing takes that long."""
    if stamp_ns == 0:
        return None, ""  # counted as zero_stamp already
    if now_ns <= 0:
        return None, "the node's clock reads 0 (use_sim_time and no /clock yet?): input age not measured"
    age = (now_ns - stamp_ns) / 1e6
    if abs(age) > CLOCK_DISAGREEMENT_MS:
        side = "behind" if age > 0 else "ahead of"
        return None, (f"input stamps are {abs(age) / 1000:.0f} s {side} the node's clock (use_sim_time without "
                      "/clock, or the camera on another clock?): input age not measured")
    return age, ""


@dataclass
class _Slot:
    pending: tuple | None = None  # (frame, receipt time)
    last_receipt: float | None = None
    last_seq: dict = field(default_factory=dict)  # publisher -> its last sequence number
    last_problem: str = ""
    counts: dict = field(default_factory=lambda: dict.fromkeys(
        COUNTERS + ("window_received", "window_processed", "window_errors", "window_warnings"), 0))
    infer_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    latency_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    input_age_ms: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    skipped: dict = field(default_factory=dict)  # output -> frames it was not computed (nobody subscribed)
    clock_note: str = ""


class FrameSlots:
    """Thread-safe newest-frame-per-camera mailbox with counters. ``clock``: seconds, monotonic."""

    def __init__(self, cameras, clock=time.monotonic):
        self.clock = clock
        self._slots = {c: _Slot() for c in cameras}
        self._cond = threading.Condition()
        self._closed = False
        self._window_start = clock()

    def put(self, camera: str, frame, seq: int | None = None, source=None) -> None:
        """Keep ``frame`` as the camera's newest (overwriting one not yet taken). ``seq``: the
        sequence number of ``source`` (a publisher id) when known; a jump counts the frames in
        between as lost (a smaller one - a restarted publisher - starts over)."""
        now = self.clock()
        with self._cond:
            s = self._slots[camera]
            if seq is not None:
                last = s.last_seq.get(source)
                if last is not None and seq > last + 1:
                    self._count(s, "lost", f"{seq - last - 1} frame(s) lost in transport before #{seq}", seq - last - 1)
                if source not in s.last_seq and len(s.last_seq) >= 16:
                    s.last_seq.clear()  # many short-lived publishers: forget them
                s.last_seq[source] = seq
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

    @staticmethod
    def _count(s: _Slot, what: str, detail: str, n: int = 1) -> None:
        s.counts[what] += n
        if what == "errors":
            s.counts["window_errors"] += n
        elif what in _WARNINGS:
            s.counts["window_warnings"] += n
        s.last_problem = f"{what}: {detail}" if detail else what

    def dropped(self, camera: str, reason: str, detail: str = "") -> None:
        """A taken frame was not processed: ``reason`` is 'stale', 'future' or 'bad'."""
        with self._cond:
            self._count(self._slots[camera], reason, detail)

    def flagged(self, camera: str, what: str, detail: str = "") -> None:
        """A taken frame has a problem (``what``: a counter, e.g. 'zero_stamp') but is processed."""
        with self._cond:
            self._count(self._slots[camera], what, detail)

    def skipped(self, camera: str, outputs) -> None:
        """Outputs of a published frame that were neither computed nor sent (disabled or unsubscribed)."""
        with self._cond:
            sk = self._slots[camera].skipped
            for out in outputs:
                sk[out] = sk.get(out, 0) + 1

    def error(self, camera: str, detail: str) -> None:
        """An exception while processing the camera's frame (whether or not it was published)."""
        with self._cond:
            self._count(self._slots[camera], "errors", detail)

    def done(self, camera: str, receipt: float, infer_ms: float, input_age_ms: float | None = None,
             clock_note: str = "") -> None:
        """A taken frame (received at ``receipt``) was published now; ``clock_note``: why its input age
        is None (see :func:`input_age`), reported once per :meth:`stats` window."""
        latency = (self.clock() - receipt) * 1000
        with self._cond:
            s = self._slots[camera]
            s.counts["processed"] += 1
            s.counts["window_processed"] += 1
            s.infer_ms.append(infer_ms)
            s.latency_ms.append(latency)
            if input_age_ms is not None:
                s.input_age_ms.append(input_age_ms)
            if clock_note:
                s.clock_note = clock_note

    def stats(self) -> dict[str, CameraStats]:
        """Every camera's counters now; rates since the previous call (whose window this resets)."""
        now = self.clock()
        with self._cond:
            dt = max(1e-6, now - self._window_start)
            self._window_start = now
            out = {}
            for cam, s in self._slots.items():
                c = s.counts
                out[cam] = CameraStats(**{k: c[k] for k in COUNTERS}, window_errors=c["window_errors"],
                                       window_warnings=c["window_warnings"], last_problem=s.last_problem,
                                       input_hz=c["window_received"] / dt, processed_hz=c["window_processed"] / dt,
                                       silent_s=None if s.last_receipt is None else now - s.last_receipt,
                                       infer_ms=tuple(s.infer_ms), latency_ms=tuple(s.latency_ms),
                                       input_age_ms=tuple(s.input_age_ms), skipped=tuple(sorted(s.skipped.items())),
                                       clock_note=s.clock_note)
                s.clock_note = ""
                for k in ("window_received", "window_processed", "window_errors", "window_warnings"):
                    c[k] = 0
            return out
