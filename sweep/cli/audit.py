"""``sweep audit lookahead STUDY``: recompute every factor of a study with the future replaced
by noise (``sweep.factors.audit``); exit 1 when any value of the past moves.

The audit also runs by itself before the first ``sweep run`` of a study that names
a user factor (``first_run``): a study and code it has cleared are remembered in
``<results folder>/audit.json`` (the study's fingerprint and each factor file's
sha256), so a changed study or a changed file is audited again, and a lookahead
refuses the run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError

# The engine (Polars, Numba) is imported in the functions that use it: building the
# parser, or a run of a study without user factors, needs none of it.

AUDIT_FILE = "audit.json"
HELP = {"audit": "check every factor of a study for lookahead"}


def add_parser(subparsers) -> None:
    from sweep.factors.audit import CUTS, SEED

    aud = subparsers.add_parser(
        "audit", help=HELP["audit"],
        description="lookahead: for several cut days t, recompute every factor of the study (built-in, column "
                    "and user factors) on the data with every value after t replaced by noise; a value on or "
                    "before t that changes read the future. Exit 0 when clean, 1 on a lookahead.")
    aud.add_argument("check", choices=("lookahead",), help="what to audit (lookahead)")
    aud.add_argument("study", help="study file (TOML)")
    aud.add_argument("--data", metavar="PATH", help="data file (default: [study] data, else the embedded data set)")
    aud.add_argument("--funding", metavar="PATH", help="separate funding table (default: [study] funding)")
    aud.add_argument("--cuts", type=int, default=CUTS, metavar="K",
                     help=f"cut days, spread evenly over the data (default {CUTS})")
    aud.add_argument("--seed", type=int, default=SEED, help=f"seed of the noise (default {SEED})")


def study_configs(study: Any) -> list[dict[str, Any]]:
    """The resolved configurations whose features a study computes: the grid's, or the corners
    of an Optuna search space (every factor choice at the ends of every range)."""
    if study.kind == "portfolio":
        raise SweepError(f"{study.path}: a portfolio study computes no factor (audit the studies it combines)")
    if "space" in study.tables:
        from sweep.study.optuna import corners, parse_space

        return corners(study, parse_space(study))
    return study.resolved_configs()


def audit_study(study: Any, data: str | Path | None = None, funding: str | Path | None = None,
                cuts: int | None = None, seed: int | None = None) -> Any:
    """The lookahead audit (a ``sweep.factors.audit.Report``) of every feature ``study``
    computes, on its data (``cuts`` and
    ``seed`` default to ``sweep.factors.audit``'s ``CUTS`` and ``SEED``)."""
    from sweep.factors.audit import CUTS, SEED, lookahead
    from sweep.factors.user import features_of
    from sweep.run.plan import plan

    cuts = CUTS if cuts is None else cuts
    seed = SEED if seed is None else seed
    if cuts < 1:
        raise SweepError(f"--cuts = {cuts} must be at least 1")
    configs = study_configs(study)
    planned = plan(study, data, funding, configs=configs)  # the data, every configuration checked on it
    return lookahead(planned.panel, features_of(configs), cuts, seed)


def command(args) -> int:
    from sweep.study import load_study

    study = load_study(args.study)
    for line in study.code_notices():
        print(line, file=sys.stderr)
    report = audit_study(study, args.data, args.funding, args.cuts, args.seed)
    for line in report.lines():
        print(line)
    return 0 if report.clean else 1


def _memory(study: Any) -> dict[str, Any]:
    return {"study": study.fingerprint(),
            "files": {name: code.sha256 for name, code in sorted(study.code.items())}}


def first_run(study: Any, out: str | Path | None, data: str | Path | None = None,
              funding: str | Path | None = None, quiet: bool = False) -> int:
    """Before ``sweep run``: audit a study naming a user factor unless ``<out>/audit.json`` says
    this study and these files passed; 0 to go on, 1 (the report printed) to refuse the run."""
    if not study.code:
        return 0
    from sweep.core.io import write_error, write_json
    from sweep.results.meta import read_json

    folder = Path(out) if out is not None else Path("results") / study.name
    path = folder / AUDIT_FILE
    memory = _memory(study)
    if read_json(path).get("passed") == memory:  # {} when missing or unreadable: audit again
        return 0
    report = audit_study(study, data, funding)
    lines = report.lines()
    if not report.clean:
        print(f"{study.path}: lookahead audit (first run of a study naming a user factor): run refused",
              file=sys.stderr)
        for line in lines:
            print(line, file=sys.stderr)
        return 1
    if not quiet:
        print(f"lookahead audit: {lines[0]}", file=sys.stderr)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(folder, exc) from None
    write_json({"passed": memory, **report.to_dict()}, path)
    return 0
