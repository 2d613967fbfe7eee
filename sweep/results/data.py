"""The data a results folder was computed on, found again and checked.

Every command that reruns configurations of a finished study (``report``,
``compare``, ``show --best-per``) needs the very panel the study ran on: the
data and funding paths of its manifest are looked up through the one path
resolver (``sweep.core.paths``) and the panel's fingerprint must match the
manifest's, or the reruns would describe other data.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.core.paths import candidates


def study_table(manifest: dict[str, Any]) -> dict[str, Any]:
    """The ``[study]`` table of the study text the manifest keeps (``{}`` when it has none)."""
    try:
        raw = tomllib.loads((manifest.get("study") or {}).get("text") or "")
    except (tomllib.TOMLDecodeError, RecursionError):
        return {}
    return raw.get("study") or {}


def load_study_panel(manifest: dict[str, Any], folder: Path, data=None, funding=None):
    """``(panel, "")``: the panel the study ran on, or ``(None, why)`` in one sentence.

    ``data``/``funding`` override the manifest's paths (the data moved); relative
    paths are resolved as ``sweep run`` resolves them, plus from the results folder.
    """
    from sweep.data.panel import load_panel

    d = manifest.get("data") or {}
    table = study_table(manifest)
    anchors = dict(study=Path((manifest.get("study") or {}).get("path") or "."), results=Path(folder))
    if data is not None:
        dpath = Path(data)
    else:
        names = [Path(d["path"])] if d.get("path") else []
        if table.get("data"):
            names.append(Path(table["data"]))
        found = [c for n in names for c in candidates(n, **anchors) if c.is_file()]
        if not found:
            return None, (f"The study's data {d.get('path', '?')} is not found from here: pass --data "
                          "to rerun the best configurations.")
        dpath = found[0]
    fpath = None
    if funding is not None:
        fpath = Path(funding)
    elif table.get("funding"):
        rel = Path(table["funding"])
        found = [c for c in candidates(rel, **anchors) if c.is_file()]
        if not found:
            return None, f"The study's funding table {rel} is not found from here: pass --funding."
        fpath = found[0]
    try:
        panel = load_panel(dpath, fpath)
    except SweepError as exc:
        return None, f"The study's data could not be loaded ({exc}); the best configurations are not rerun."
    want = d.get("fingerprint")
    if want and panel.fingerprint != want:
        return None, (f"{dpath}: the data changed since the study ran (fingerprint {panel.fingerprint}, the "
                      f"study's {want}); rerun the study, or pass the original data with --data"
                      + (" and --funding" if fpath or table.get("funding") else "") + ".")
    return panel, ""
