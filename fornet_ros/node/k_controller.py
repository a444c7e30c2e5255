"""Deadline-aware K: adjust the Top-K ratio from measured end-to-end latency so that its p95
stays under a target when the CPU/GPU is shared or a camera is added.

With a measured cost curve (``cost``: K -> predicted network ms for a batch of the node's cameras
on the cheaper focus path, from the Segmenter's warm-up, :mod:`fornet_ros.inference.path_choice`)
the controller *plans*: it makes no assumption that latency rises with K (on a CPU the dense path at
K = 1 can cost less than the sparse one at K = 0.9). Each update it predicts every candidate K's p95
from the window's frames: each frame's latency plus the Segmenter call it waited for times the
curve's relative cost change (the frame's transport does not change with K; the call's
pre/post-processing is scaled with it, which overstates what a dearer K adds - on the safe side for
a move up - and what a cheaper K saves, which the dead band of a move down absorbs), and takes the
most accurate K - accuracy rises with K - predicted to meet the set point. Without the network time
a frame's whole latency scales with the curve. Candidates are the curve's K
within [k_min, k_max], plus any higher K (up to 1) that costs no more than k_max does: k_max bounds
the cost, and a more accurate K at no extra cost is never refused. On the curve, setting a target
starts the node no slower than the static K it would otherwise run, at the most accurate K predicted
to fit. It is not always as accurate as the best static K that meets the target: on a noisy machine
a window's p95 moves as much as K moves it, and a K that meets the target by a few per cent is left
in slow spells and tried again later (measured: docs/benchmarks.md).

Planning, it keeps a K whose p95 meets the target and asks head-room (``margin``) only of a move
up. A slow spell that forced K down is followed by *probes*: ``probe_every`` updates after the move,
with the window within the target, it tries the most accurate K predicted to meet the target itself
(no head-room; where that is more accurate than a move up to the set point would be) and keeps it when
its first window meets the target. The kept K is then on trial for as many updates as the wait was:
a probe whose window misses, or a kept K forced down within its trial, doubles the wait (up to
``probe_max``); a slow spell that forces a K down outside a trial starts from the first wait again.
So a K lost to a passing slow spell comes back, and one the machine can no longer afford is tried
ever more rarely.
Planning judges a full window after a start or a move (a p95 over 10 frames is the machine's slowest
frame, not the K's), and acts at once when more of the window's frames have missed the target than
its p95 allows. Without a curve it is a plain integral controller on the windowed p95 (a plant where
cost rises with K). Either way what keeps it calm is (1) acting only every ``every`` frames on a
``window``-frame p95, (2) hysteresis: planning, between the set point (``margin`` x target) and the
target; without a curve, a dead band around the set point, and (3) without a curve, a rate limit per
update. It cannot do the impossible: when even the cheapest K is too slow it stays there and says so
(``saturated``). Pure: no ROS, no clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LatencyKController:
    target_ms: float
    k_min: float = 0.05
    k_max: float = 0.5
    k: float = 0.25  # the K in use now (start value)
    window: int = 30  # frames in the p95 estimate
    every: int = 5  # frames between updates
    margin: float = 0.85  # set point = margin * target: head-room for noise
    gain: float = 0.5  # K change per unit of relative error, times (k_max - k_min)
    max_step: float = 0.05  # largest K change per update
    deadband: float = 0.05  # integral: relative error inside which K is left alone; planning: a move down
    # aims at (1 - deadband) x target
    cost: Callable[[float], float] | None = None  # measured K -> network ms (plans on it when given)
    ks: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0)  # K the planner may pick (with k_min, k_max)
    skip: int = 10  # first frames not measured: a node's first frames are slow (allocations, first calls)
    probe_every: int = 8  # planning: updates after a forced move down before a probe up (first wait)
    probe_max: int = 96  # the longest wait between probes (the wait doubles after each failed probe)
    _lat: deque = field(default_factory=deque, init=False, repr=False)  # end-to-end ms of the window's frames
    _net: deque = field(default_factory=deque, init=False, repr=False)  # their network ms (NaN: not given)
    _n: int = field(default=0, init=False)
    _skipped: int = field(default=0, init=False)
    _probe_wait: int | None = field(default=None, init=False)  # updates before a probe; None: no forced move yet
    _since: int = field(default=0, init=False)  # updates since the last move made over the target
    _probe_from: float | None = field(default=None, init=False)  # during a probe: the K it left
    _trial: int = field(default=0, init=False)  # updates after a kept probe in which a forced move down fails it
    probes: int = field(default=0, init=False)  # probes tried (diagnostics, tests)

    def __post_init__(self):
        if not self.target_ms > 0:
            raise ValueError(f"target_ms must be > 0, got {self.target_ms}")
        if not 0.0 <= self.k_min <= self.k_max <= 1.0:
            raise ValueError(f"need 0 <= k_min <= k_max <= 1, got {self.k_min}, {self.k_max}")
        if not 1 <= self.probe_every <= self.probe_max:
            raise ValueError(f"need 1 <= probe_every <= probe_max, got {self.probe_every}, {self.probe_max}")
        self._lat, self._net = deque(maxlen=self.window), deque(maxlen=self.window)
        if self.cost is None:
            self.k = float(np.clip(self.k, self.k_min, self.k_max))
            return
        cap = self.cost(self.k_max)
        grid = {self.k_min, self.k_max, *(k for k in self.ks if self.k_min <= k <= self.k_max)}
        grid |= {k for k in (*self.ks, 1.0) if k > self.k_max and self.cost(k) <= cap}
        self.candidates = sorted(grid)
        self.k = self.plan(self.cost, self.cost(self.k))  # start no slower than the static K asked for

    def plan(self, predicted: Callable[[float], float], limit_ms: float) -> float:
        """The most accurate candidate K whose ``predicted`` ms is within ``limit_ms``; the
        cheapest candidate (the most accurate of equals) when none is."""
        fits = [k for k in self.candidates if predicted(k) <= limit_ms]
        if fits:
            return max(fits)
        return min(self.candidates, key=lambda k: (self.cost(k), -k))

    @property
    def p95_ms(self) -> float | None:
        return float(np.percentile(self._lat, 95)) if self._lat else None

    @property
    def saturated(self) -> bool:
        """At the cheapest K and still over the target: K alone cannot meet the deadline."""
        p = self.p95_ms
        if self.cost is not None:
            cheapest = min(self.cost(k) for k in self.candidates)
            return self.cost(self.k) <= cheapest and p is not None and p > self.target_ms
        return self.k <= self.k_min and p is not None and p > self.target_ms

    def update(self, latency_ms: float, network_ms: float | None = None) -> float:
        """Record one frame's end-to-end latency (and, when known, the Segmenter call's time in it);
        returns the K to use from now on. The first ``skip`` frames are not recorded: on the node,
        frames right after configure took longer than the target that K = 1 met afterwards and moved
        K down at once (docs/benchmarks.md, session 7)."""
        if self._skipped < self.skip:
            self._skipped += 1
            return self.k
        self._lat.append(float(latency_ms))
        self._net.append(float("nan") if network_ms is None else float(network_ms))  # in step with _lat
        self._n += 1
        if self._n % self.every:
            return self.k
        if self.cost is not None:
            # planning judges a full window, unless more of its frames missed the target than its p95 allows
            if len(self._lat) < self.window and sum(x > self.target_ms for x in self._lat) <= 0.05 * self.window:
                return self.k
            return self._replan()
        if len(self._lat) < min(self.window, 2 * self.every):
            return self.k
        err = (self.margin * self.target_ms - self.p95_ms) / self.target_ms  # > 0: room to spare
        if abs(err) > self.deadband:
            step = float(np.clip(self.gain * err * (self.k_max - self.k_min), -self.max_step, self.max_step))
            self.k = float(np.clip(self.k + step, self.k_min, self.k_max))
        return self.k

    def _predictor(self) -> Callable[[float], float]:
        """Planning: K -> its predicted p95 over this window: each frame's latency plus its network
        time times the curve's relative cost change, ``lat + net * (cost(K) / cost(K in use) - 1)``,
        at the 95th percentile. The network time is the call the frame waited for, whole batch or
        not; a frame without it counts its whole latency as network time."""
        lat, net = np.asarray(self._lat, float), np.asarray(self._net, float)
        net = np.where(np.isnan(net), lat, net)
        now = max(self.cost(self.k), 1e-9)
        return lambda k: float(np.percentile(lat + net * (self.cost(k) / now - 1.0), 95))

    def _replan(self) -> float:
        """One planning step on this window (:meth:`_predictor`).
        Over the target: down to the most accurate K predicted within (1 - deadband) * target. A probe
        whose window misses goes back to the K it left (or lower, where the window predicts that one
        over too); it, or a kept probe forced down within its trial (``_probe_wait`` updates after
        its first window), doubles the wait before the next; any other forced move resets the wait
        to ``probe_every``. Every move made over the target restarts the wait's count.
        Within it: keep the K, or move up to a more accurate K predicted within the set point
        (margin * target); ``_probe_wait`` updates after the last move made over the target, and not
        during a trial, probe the most accurate K predicted within the target itself where it is
        more accurate than that move up; a probe whose first window meets the target is kept and
        starts its trial. The head-room is asked of a move up, not of a K that already meets the
        target: holding K to the set point instead dropped the node from K = 1, whose p95 met its
        target, to K = 0 (docs/benchmarks.md, session 7). A fresh window after a move (the old one
        measured another K)."""
        self._since += 1
        predict = self._predictor()
        on_trial = self._trial > 0
        self._trial = max(0, self._trial - 1)
        if self.p95_ms > self.target_ms:
            k = self.plan(predict, self.target_ms * (1 - self.deadband))
            if self._probe_from is not None:  # the probe's own window missed
                k = min(k, self._probe_from, key=lambda x: (self.cost(x), -x))
            if self._probe_from is not None or on_trial:  # a failed probe: wait twice as long
                self._probe_wait = min(2 * self._probe_wait, self.probe_max)
            elif k != self.k:  # a slow spell: probe after the first wait
                self._probe_wait = self.probe_every
            self._probe_from, self._trial = None, 0
            if k != self.k:  # the probe wait counts from here (moves up within the target are on the way back)
                self._since = 0
        else:
            if self._probe_from is not None:  # the probe's first window met the target: kept, on trial
                self._probe_from, self._trial, on_trial = None, self._probe_wait, True
            k = max(self.k, self.plan(predict, self.margin * self.target_ms))
            # the K in use is predicted at its own p95 (within the target), so plan() finds one that fits
            if (self._probe_wait is not None and not on_trial and self._since >= self._probe_wait
                    and (up := self.plan(predict, self.target_ms)) > k):
                self._probe_from, k = k, up  # a failed probe goes back to the K the move up allowed
                self.probes += 1
        if k != self.k:
            self.k = k
            self._lat.clear()
            self._net.clear()
        return self.k
