"""The schema of a results folder, and the one check every reader makes before reading it.

``SCHEMA_VERSION`` is written into every manifest and every table. It is
bumped whenever a number in a table would change for the same study and
data: 2 closes a book whose NAV reaches zero (SEMANTICS §8) and adds the
metric ``ruined``, so a folder of schema 1 holds numbers of another contract
and is refused, never mixed with new ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.factors import load as factor_code

SCHEMA_VERSION = 2


def read_manifest(folder: Path, required: bool = True) -> dict[str, Any]:
    """``folder/manifest.json``, refused when an older sweep wrote it.

    Returns ``{}`` for a folder without a manifest when ``required`` is false.
    """
    path = Path(folder) / "manifest.json"
    if not path.exists():
        if required:
            raise SweepError(f"{folder}: no manifest.json (not a finished results folder; run the study first)")
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SweepError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    if not isinstance(manifest, dict):
        raise SweepError(f"{path}: not a manifest (a JSON object was expected)")
    check_schema(manifest, path)
    return manifest


def check_schema(manifest: dict[str, Any], path: Path | str) -> None:
    """Refuse a manifest of another schema, with the command that rebuilds it."""
    version = manifest.get("schema_version")
    if version == SCHEMA_VERSION:
        factor_code.restore(manifest)  # the user factors its books ran, for a rerun (sweep.factors.load)
        return
    study = (manifest.get("study") or {}).get("path") if isinstance(manifest.get("study"), dict) else None
    rerun = f"sweep run {study} --force" if study else "sweep run STUDY --force"
    raise SweepError(f"{path}: written by another version of sweep (schema_version {version}, this one reads "
                     f"{SCHEMA_VERSION}: ruined books are now closed and reported, SEMANTICS §8); "
                     f"rerun it: {rerun}")
