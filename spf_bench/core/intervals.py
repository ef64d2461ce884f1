"""Interval helpers every layer may use: the Wilson score interval of a rate.

A rate of ``hits`` out of ``n`` trials gets the Wilson score interval rather than the normal
one (mean ± z·sd/√n): the normal interval leaves [0, 1] near the ends (1 hit of 12 gives
[-0.07, 0.24]) and collapses to a single point at 0 or n hits, while Wilson's stays inside
[0, 1] and keeps a width at the ends. scipy computes it; this wrapper only gives NaN for an
empty sample (scipy refuses n = 0) and plain floats.
"""

from __future__ import annotations

import math

from scipy.stats import binomtest

CONFIDENCE = 0.95


def wilson(hits: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval (no continuity correction) of the rate ``hits / n``."""
    if n == 0:
        return math.nan, math.nan
    interval = binomtest(int(hits), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    # Clamped: at 0 or n hits scipy's arithmetic can land a rounding error outside [0, 1].
    return max(0.0, float(interval.low)), min(1.0, float(interval.high))
