"""Deadline-aware K (issue #15): adjust the Top-K ratio from measured end-to-end latency so that
its p95 stays under a target when the CPU/GPU is shared or a camera is added.

The plant is monotone (the focus stage costs ∝ K on top of a fixed backbone cost), so a plain
integral controller on the windowed p95 is enough; what keeps it calm is (1) acting only every
``every`` frames on a ``window``-frame p95, (2) a dead band around a set point just under the
target (``margin``), and (3) a rate limit per update. It cannot do the impossible: when even
``k_min`` is too slow it stays at ``k_min`` and says so (``saturated``). Pure: no ROS, no clock."""

from __future__ import annotations

from collections import deque
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
    deadband: float = 0.05  # relative error inside which K is left alone
    _lat: deque = field(default_factory=deque, repr=False)
    _n: int = 0

    def __post_init__(self):
        if not self.target_ms > 0:
            raise ValueError(f"target_ms must be > 0, got {self.target_ms}")
        if not 0.0 <= self.k_min <= self.k_max <= 1.0:
            raise ValueError(f"need 0 <= k_min <= k_max <= 1, got {self.k_min}, {self.k_max}")
        self.k = float(np.clip(self.k, self.k_min, self.k_max))
        self._lat = deque(maxlen=self.window)

    @property
    def p95_ms(self) -> float | None:
        return float(np.percentile(self._lat, 95)) if self._lat else None

    @property
    def saturated(self) -> bool:
        """At k_min and still over the target: K alone cannot meet the deadline."""
        p = self.p95_ms
        return self.k <= self.k_min and p is not None and p > self.target_ms

    def update(self, latency_ms: float) -> float:
        """Record one frame's end-to-end latency; returns the K to use from now on."""
        self._lat.append(float(latency_ms))
        self._n += 1
        if self._n % self.every or len(self._lat) < min(self.window, 2 * self.every):
            return self.k
        err = (self.margin * self.target_ms - self.p95_ms) / self.target_ms  # > 0: room to spare
        if abs(err) > self.deadband:
            step = float(np.clip(self.gain * err * (self.k_max - self.k_min), -self.max_step, self.max_step))
            self.k = float(np.clip(self.k + step, self.k_min, self.k_max))
        return self.k
