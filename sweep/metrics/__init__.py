"""Metrics: one table of name, direction, label, unit and percent-or-not (see ``table``).

``METRICS`` holds the built-in rows in the kernel's output order; ``register``
adds an extra metric computed in Python from a configuration's daily returns.
"""

from sweep.metrics.table import (
    METRICS,
    Metric,
    compute_extra,
    extra,
    get,
    lower_is_better,
    names,
    register,
    unregister,
)

__all__ = ["METRICS", "Metric", "compute_extra", "extra", "get", "lower_is_better", "names", "register",
           "unregister"]
