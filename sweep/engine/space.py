"""The configurations of a grid, generated a range at a time and never listed whole.

A grid is a product of axes (last axis fastest; with ``phase = "all"`` each
configuration of rebalance period ``k`` comes in ``k`` phases, innermost). Its
configurations differ in two ways:

* **structural** parameters (factor, window, weighting, universe, regime, trend
  sizing, ...) decide features, rankings and defaults: a grid has few distinct
  combinations of them, each resolved once (``sweep.engine.params.resolve``) and
  checked against the data once;
* **schedule and cost** parameters (``SCALAR``: rebalance period, phase, hold,
  buffer, costs, q, top_n, max_days) are copied by ``resolve`` as given and read
  by the recursion only, so a configuration is its structural combination's
  resolved form with these values put in.

A range ``[a, b)`` of configurations is therefore a few integer arrays (the digits
of each axis), and everything a run needs of it is built from them in bulk: the
kernel parameter rows (``encode``), the table's parameter columns and the ids
(``frame``). A million configurations cost a few megabytes at a time, not the
2.4 KB each of a list of dicts.

>>> space = ConfigSpace({"factor": "volatility"}, {"rebalance_days": [1, 2], "phase": "all"})
>>> len(space), [(p["rebalance_days"], p["phase"]) for p in space]
(3, [(1, 0), (2, 0), (2, 1)])
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from typing import Any, Iterator

import numpy as np
import polars as pl

from kernels import portfolio as K
from sweep.core.errors import SweepError
from sweep.engine.params import resolve

# Copied by ``resolve`` as given and read by the recursion only (kernels.portfolio's parameter
# rows): neither a feature, a ranking, a universe, a default nor a warm-up depends on them.
SCALAR = ("rebalance_days", "phase", "hold", "buffer", "fee_bps", "slippage_bps", "q", "top_n", "max_days")


class ConfigSpace(Sequence):
    """A grid's resolved configurations in the grid's order, generated on demand.

    ``fixed``: the parameters every configuration shares; ``axes``: name -> values
    in order (``"phase": "all"`` for every phase). ``where`` names the study in errors.
    Indexing gives resolved dicts (as ``[resolve(raw) for raw in grid]`` would);
    ``digits``, ``encode`` and ``frame`` work on ranges, in bulk.
    """

    def __init__(self, fixed: dict[str, Any], axes: dict[str, Any], where: str = "grid"):
        self.fixed, self.where = dict(fixed), where
        self.every_phase = axes.get("phase") == "all"
        self.axes = {k: list(v) for k, v in axes.items() if not (k == "phase" and self.every_phase)}
        self.names = list(self.axes)
        self._virtual_k = self.every_phase and "rebalance_days" not in self.axes
        if self._virtual_k:  # one value of k for every combination: an axis of one, not a column
            self.names.insert(0, "rebalance_days")
        values = [self.axes.get(k) or [self.fixed.get(k, 1)] for k in self.names]
        self.values = dict(zip(self.names, values))
        self.radix = np.array([len(v) for v in values], dtype=np.int64)
        self.structural = [k for k in self.names if k not in SCALAR]
        self.scalar = [k for k in self.names if k in SCALAR]
        if self.every_phase:
            ks = np.asarray(self.values["rebalance_days"], dtype=np.int64)
            j = self.names.index("rebalance_days")
            self._inner = int(np.prod(self.radix[j + 1:]))
            self._kpos = j
            self._kstart = np.concatenate([[0], np.cumsum(ks)]) * self._inner
            self._block = int(self._kstart[-1])
            self._n = int(np.prod(self.radix[:j])) * self._block
        else:
            self._n = int(np.prod(self.radix))
        self._resolve_combinations()

    # ---- the combinations of structural parameters ----------------------------------------

    def _raw(self, digits: dict[str, int]) -> dict[str, Any]:
        raw = {**self.fixed, **{k: self.values[k][d] for k, d in digits.items() if k in self.axes}}
        if self.every_phase:
            raw["phase"] = digits.get("phase", 0)
        return raw

    def _resolve_combinations(self) -> None:
        """Resolve every structural combination once (first scalar values, phase 0), in the grid's
        order, so the first impossible configuration is the one a full enumeration would meet."""
        self.reps: list[dict[str, Any]] = []
        first = {k: 0 for k in self.scalar}
        for combo in itertools.product(*(range(len(self.values[k])) for k in self.structural)):
            raw = self._raw({**first, **dict(zip(self.structural, combo))})
            # A phase axis is checked against the periods below, not with the first period only.
            raw_check = {**raw, "phase": 0} if "phase" in self.scalar_params() else raw
            try:
                self.reps.append(resolve(raw_check, self.where, checked=True))
            except SweepError:
                if not self.axes:
                    raise
                resolve(raw_check, self._where(raw), checked=True)
        self._check_phases()
        self._strides = np.ones(len(self.structural), dtype=np.int64)
        for i in range(len(self.structural) - 2, -1, -1):
            self._strides[i] = self._strides[i + 1] * len(self.values[self.structural[i + 1]])
        # Per scalar axis: its values as the table stores them and as ``repr`` hashes them.
        self._scalar_values = {k: self.values[k] for k in self.scalar}
        if self.every_phase:
            self._scalar_values["phase"] = list(range(int(max(self.values["rebalance_days"]))))

    def scalar_params(self) -> list[str]:
        """The schedule and cost parameters that vary across the grid (phase included)."""
        return self.scalar + (["phase"] if self.every_phase else [])

    def _where(self, raw: dict[str, Any]) -> str:
        return f"{self.where}: configuration " + ", ".join(f"{k}={raw[k]!r}" for k in self.axes)

    def _check_phases(self) -> None:
        # resolve's one rule that ties two schedule parameters together: phase < rebalance_days.
        if self.every_phase:
            return
        phases = self.values.get("phase", [self.fixed.get("phase", 0)])
        ks = self.values.get("rebalance_days", [self.fixed.get("rebalance_days", 1)])
        if all(ph < k for ph in phases for k in ks):
            return
        for i in range(self._n):  # an error path: find the first configuration it refuses
            raw = self._raw(self._digits_of(i))
            if raw.get("phase", 0) >= raw.get("rebalance_days", 1):
                resolve(raw, self._where(raw) if self.axes else self.where, checked=True)

    # ---- indexing -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def digits(self, a: int, b: int) -> dict[str, np.ndarray]:
        """Each axis's value index (and ``"phase"`` with every phase) for configurations ``a .. b-1``."""
        i = np.arange(a, b, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        if not self.every_phase:
            for k, r in zip(reversed(self.names), reversed(self.radix)):
                i, out[k] = np.divmod(i, r)
            return out
        j = self._kpos
        outer, rem = np.divmod(i, self._block)
        t = np.searchsorted(self._kstart, rem, side="right") - 1
        rem -= self._kstart[t]
        ks = np.asarray(self.values["rebalance_days"], dtype=np.int64)[t]
        inner, out["phase"] = np.divmod(rem, ks)
        out["rebalance_days"] = t
        for k, r in zip(reversed(self.names[j + 1:]), reversed(self.radix[j + 1:])):
            inner, out[k] = np.divmod(inner, r)
        for k, r in zip(reversed(self.names[:j]), reversed(self.radix[:j])):
            outer, out[k] = np.divmod(outer, r)
        return out

    def _digits_of(self, i: int) -> dict[str, int]:
        return {k: int(v[0]) for k, v in self.digits(i, i + 1).items()}

    def combination(self, digits: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Index into ``reps`` of each of ``n`` configurations' structural combination."""
        c = np.zeros(n, dtype=np.int64)
        for k, s in zip(self.structural, self._strides):
            c += digits[k] * s
        return c

    def _config(self, i: int) -> dict[str, Any]:
        if not 0 <= i < self._n:
            raise IndexError(i)
        d = self._digits_of(i)
        p = dict(self.reps[int(self.combination({k: np.array([v]) for k, v in d.items()}, 1)[0])])
        for k in self.scalar:
            p[k] = self.values[k][d[k]]
        if self.every_phase:
            p["phase"] = d["phase"]
        return p

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._config(j) for j in range(*i.indices(self._n))]
        i = int(i)
        return self._config(i + self._n if i < 0 else i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for j in range(self._n):
            yield self._config(j)

    # ---- in bulk ----------------------------------------------------------------------------

    def _scalar(self, name: str, digits: dict[str, np.ndarray], dtype) -> np.ndarray | None:
        """The values of schedule/cost parameter ``name`` per configuration; None when it is not swept."""
        if name == "phase" and self.every_phase:
            return digits["phase"].astype(dtype)
        if name in self.axes or (name == "rebalance_days" and self._virtual_k):
            return np.asarray(self.values[name], dtype=object if dtype is None else dtype)[digits[name]]
        return None

    def encode(self, a: int, b: int, ip: np.ndarray, fp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kernel parameter rows of configurations ``a .. b-1``, from the rows ``ip``/``fp`` of
        ``reps`` (``sweep.engine.workspace.compile_configs(ws, space.reps)``) with the schedule and
        cost values put in as ``compile_configs`` would."""
        d = self.digits(a, b)
        c = self.combination(d, b - a)
        ip_, fp_ = ip[c], fp[c]
        for name, col in (("rebalance_days", K.I_K), ("phase", K.I_PHASE), ("q", K.I_Q), ("top_n", K.I_TOP_N)):
            v = self._scalar(name, d, np.int64)
            if v is not None:
                ip_[:, col] = v
        hold = self._scalar("hold", d, None)
        if hold is not None:
            ip_[:, K.I_DRIFT] = hold == "drift"
        for name, col in (("buffer", K.F_BUFFER), ("max_days", K.F_MAX_DAYS)):
            v = self._scalar(name, d, np.float64)
            if v is not None:
                fp_[:, col] = v
        if "fee_bps" in self.axes or "slippage_bps" in self.axes:
            fee = self._scalar("fee_bps", d, np.float64)
            slip = self._scalar("slippage_bps", d, np.float64)
            fixed = self.reps[0]  # an unswept cost has one resolved value in every combination
            fee = fee if fee is not None else np.full(len(c), float(fixed["fee_bps"]))
            slip = slip if slip is not None else np.full(len(c), float(fixed["slippage_bps"]))
            fp_[:, K.F_COST] = (fee + slip) / 10_000.0
        return ip_, fp_

    def frame(self, a: int, b: int, columns: list[str], schema: dict[str, pl.DataType]) -> pl.DataFrame:
        """``config_id`` and the parameter ``columns`` of configurations ``a .. b-1`` (the table's
        dtypes in ``schema``, see ``column_schema``)."""
        d = self.digits(a, b)
        c = pl.Series(self.combination(d, b - a))
        cols: dict[str, pl.Series] = {"config_id": self.ids(d, c.to_numpy())}
        for name in columns:
            if name in self.scalar_params():
                idx = pl.Series(d[name])
                values = self._scalar_values[name]
            else:
                idx, values = c, [p[name] for p in self.reps]
            cols[name] = pl.Series(name, table_values(name, values), dtype=schema[name]).gather(idx)
        return pl.DataFrame(cols)

    def column_schema(self, columns: list[str]) -> dict[str, pl.DataType]:
        """The dtype of each parameter column: what polars infers from the column's distinct values,
        so a table written a range at a time has the dtypes of one built at once."""
        schema: dict[str, pl.DataType] = {"config_id": pl.String}
        for name in columns:
            values = self._scalar_values[name] if name in self.scalar_params() else [p[name] for p in self.reps]
            distinct = {repr(v): v for v in values}
            schema[name] = pl.Series(name, table_values(name, list(distinct.values()))).dtype
        return schema

    def ids(self, d: dict[str, np.ndarray], c: np.ndarray) -> pl.Series:
        """``sweep.engine.params.config_id`` of each configuration, hashed in bulk: the text it
        hashes is its combination's text with the schedule and cost values spliced in."""
        slots = sorted(self.scalar_params())
        if not hasattr(self, "_pieces"):
            templates = [_template(p, slots) for p in self.reps]
            self._pieces = [pl.Series([t[n] for t in templates]) for n in range(len(slots) + 1)]
            self._fragments = {k: pl.Series([repr((k, v)) for v in self._scalar_values[k]]) for k in slots}
        cols = {"t0": self._pieces[0].gather(c)}
        for n, k in enumerate(slots):
            cols[f"f{n}"] = self._fragments[k].gather(d[k])
            cols[f"t{n + 1}"] = self._pieces[n + 1].gather(c)
        texts = pl.DataFrame(cols).select(pl.concat_str(pl.all()).alias("t"))["t"].to_list()
        sha = hashlib.sha256
        return pl.Series("config_id", [sha(t.encode()).hexdigest()[:16] for t in texts], dtype=pl.String)


def _template(p: dict[str, Any], slots: list[str]) -> list[str]:
    """``repr(sorted(p.items()))`` cut at the ``slots`` keys: the constant pieces around them."""
    pieces, current = [], "["
    for n, (k, v) in enumerate(sorted(p.items())):
        sep = ", " if n else ""
        if k in slots:
            pieces.append(current + sep)
            current = ""
        else:
            current += sep + repr((k, v))
    pieces.append(current + "]")
    return pieces


def table_values(name: str, values: list[Any]) -> list[Any]:
    """A parameter's values as the results table stores them: ``exclude`` as a list, and a column
    mixing numbers and strings (SEMANTICS §11: ``forecast_scalar = [3.75, "auto"]``) as strings."""
    if name == "exclude":
        return [list(v) for v in values]
    if any(isinstance(v, str) for v in values) and any(isinstance(v, (int, float)) for v in values):
        return [v if v is None or isinstance(v, str) else str(v) for v in values]
    return values


__all__ = ["SCALAR", "ConfigSpace", "table_values"]
