"""Metrics. Each metric lives in its own module with a functional form.

``keys`` holds the metric names of the DESIGN.md contract; ``groups`` ties the metric
modules into the per-sample scorer the runner calls.
"""

from .keys import METRIC_KEYS

__all__ = ["METRIC_KEYS"]
