"""What every manifest holds besides a kind's own figures: versions, the study, the data, the window."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from sweep.core.version import __version__
from sweep.results.schema import SCHEMA_VERSION


def versions() -> dict[str, str]:
    """The versions that produced a results folder (numbers may change between them)."""
    import numba
    import numpy as np
    import polars as pl

    return {"sweep": __version__, "numba": numba.__version__, "polars": pl.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` when it is missing, unreadable or not an object.

    For bookkeeping files (a partial run's state, an old manifest being compared), where
    "not there" and "not ours" lead to the same decision.
    """
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return obj if isinstance(obj, dict) else {}


def manifest_head(study: Any, panel: Any, fp_: str, start: Any, end: Any, days: int) -> dict[str, Any]:
    """What every kind's manifest.json opens with: the study, the data and the window.

    ``study`` is a ``sweep.study.file.Study`` and ``panel`` a ``sweep.data.panel.Panel``
    (read by attribute: the results layer sits below the study layer).
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "fingerprint": fp_,
        "study": {"name": study.name, "kind": study.kind, "objective": study.objective,
                  "path": str(study.path), "fingerprint": study.fingerprint(), "text": study.text,
                  # the user factors' code it ran: origin, path and sha256 of each file
                  **({"code": study.code_record()} if getattr(study, "code", None) else {})},
        "data": {"path": panel.source, "fingerprint": panel.fingerprint,
                 "days": int(panel.shape[0]), "symbols": int(panel.shape[1]),
                 "first_date": str(panel.dates[0]), "last_date": str(panel.dates[-1]),
                 "columns": sorted(panel.fields)},
        "evaluation_window": {"start": str(start), "end": str(end), "days": days},
    }
