"""Robust online anomaly bands: median and MAD over a sliding window, in log space for
quantities that vary multiplicatively (norms, losses). They adapt to the run instead of
relying on fixed thresholds.

The median and MAD are recomputed every ``refresh`` values and reused in between, so
scoring a value costs a subtraction and a division (the monitor scores dozens of series per
step; recomputing each median every step cost a fifth of a small model's step time).
"""

from __future__ import annotations

import math
from collections import deque

MAD_TO_SIGMA = 1.4826


def _middle(ordered: list[float]) -> float:
    n = len(ordered)
    return ordered[n // 2] if n % 2 else 0.5 * (ordered[n // 2 - 1] + ordered[n // 2])


class RobustBand:
    """``update(x)`` returns how many robust standard deviations ``x`` lies from the recent
    median (positive: above), or 0.0 during warm-up."""

    def __init__(self, *, window: int = 100, warmup: int = 20, floor: float = 0.01,
                 log: bool = True, refresh: int = 10):
        self.values: deque[float] = deque(maxlen=window)
        self.warmup, self.floor, self.log, self.refresh = warmup, floor, log, refresh
        self.median = self.scale = None
        self.since = 0

    def update(self, x: float) -> float:
        value = math.log10(max(abs(x), 1e-30)) if self.log else x
        score = 0.0
        if len(self.values) >= self.warmup:
            if self.median is None or self.since >= self.refresh:
                # plain sorted(): for a 100-value window it is several times faster than
                # numpy's median, whose per-call overhead dominates at this size
                ordered = sorted(self.values)
                self.median = _middle(ordered)
                self.scale = max(MAD_TO_SIGMA * _middle(sorted(abs(v - self.median)
                                                               for v in ordered)), self.floor)
                self.since = 0
            score = (value - self.median) / self.scale
            self.since += 1
        self.values.append(value)
        return score
