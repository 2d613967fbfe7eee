"""Reading a live configuration file (``sweep check``): the spellings it accepts, and a
one-line ``SweepError`` naming the file and the key for anything it cannot read.

A file written by hand or by another system can be anything: not UTF-8, nested
a thousand levels deep, a list where an object belongs, a key given twice,
``NaN`` or a number too large for a float. Each is refused with one line; none
reaches the comparison (``sweep.book.live``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweep.core.errors import SweepError
from sweep.engine.params import CHOICES, PARAMS, check_value, closest
from sweep.factors import FACTORS

TOP_KEYS = ("strategy_weights", "params", "provenance")
_QUOTE = 60  # characters of a value quoted in an error

# Other spellings -> sweep's name. Every PARAMS name is also accepted as itself.
KEY_ALIASES = {
    "weighting_method": "weighting",
    "weights_method": "weighting",
    "rebalance_period": "rebalance_days",
    "rebalance_freq": "rebalance_days",
}
VALUE_ALIASES = {
    "weighting": {"equal_weight": "equal", "ew": "equal", "inverse_vol": "risk_parity",
                  "inverse_volatility": "risk_parity", "rp": "risk_parity"},
    "hold": {"buy_and_hold": "drift"},
}
# What export writes for a parameter (sweep's name otherwise).
EXPORT_KEY = {"weighting": "weighting_method"}


@dataclass
class LiveValue:
    key: str  # as written in the file
    raw: Any  # as written in the file
    value: Any  # read as sweep's parameter
    note: str = ""  # which spelling was read, if not sweep's own


@dataclass
class LiveConfig:
    path: Path
    params: dict[str, dict[str, LiveValue]]  # factor -> sweep name -> value
    weights: dict[str, LiveValue] | None
    provenance: dict[str, Any]
    unknown: list[tuple[str, str, Any, str]] = field(default_factory=list)  # (factor or "-", key, value, hint)


def quote(raw: Any) -> str:
    """A value as JSON on one line, cut short: an error message stays one readable line."""
    try:
        text = json.dumps(raw)
    except (ValueError, RecursionError):
        text = repr(raw)
    return text if len(text) <= _QUOTE else text[:_QUOTE - 3] + "..."


def _key(key: str) -> str:
    # A key is the file's own text: a newline or a very long key must not break the line.
    shown = json.dumps(key)[1:-1]
    return shown if len(shown) <= _QUOTE else shown[:_QUOTE - 3] + "..."


def _bad(path: Path, key: str, msg: str) -> SweepError:
    return SweepError(f"{path}: {_key(key)} {msg}")


def _number(raw: Any, whole: bool, path: Path, key: str) -> tuple[float | int, str]:
    """A JSON number, or a string holding one; a whole-number parameter takes only whole values."""
    what = "a whole number" if whole else "a number"
    if isinstance(raw, bool):
        raise _bad(path, key, f"= {quote(raw)} must be {what}")
    note = ""
    if isinstance(raw, (int, float)):
        v = raw
    elif isinstance(raw, str):
        try:
            v = float(raw.strip())
        except ValueError:
            raise _bad(path, key, f"= {quote(raw)} must be {what}") from None
        note = f"read the string {quote(raw)} as a number"
    else:
        raise _bad(path, key, f"= {quote(raw)} must be {what}")
    # A JSON integer has no size limit: one beyond 64 bits is no number of ours (and would
    # overflow a float, or be quoted digit by digit in the next error).
    if isinstance(v, int) and not -2**63 <= v < 2**63:
        raise _bad(path, key, f"= {quote(raw)} is out of range")
    if not math.isfinite(v):
        raise _bad(path, key, f"= {quote(raw)} must be finite")
    if whole:
        if isinstance(v, float):
            if not v.is_integer():
                raise _bad(path, key, f"= {quote(raw)} must be {what}")
            if not -2.0**63 <= v < 2.0**63:
                raise _bad(path, key, f"= {quote(raw)} is out of range")
            note = note or f"read {quote(raw)} as {int(v)}"
            v = int(v)
    else:
        v = float(v)
    return v, note


def read_value(name: str, raw: Any, path: Path, key: str) -> LiveValue:
    """One live value read as sweep's parameter ``name`` (spellings accepted, and noted)."""
    kind = PARAMS[name][0]
    note = ""
    if kind in ("int", "float"):
        value, note = _number(raw, kind == "int", path, key)
    elif kind == "choice":
        if not isinstance(raw, str):
            raise _bad(path, key, f"= {quote(raw)} must be one of {', '.join(CHOICES[name])}")
        word = raw.strip().lower()
        value = VALUE_ALIASES.get(name, {}).get(word, word)
        if value not in CHOICES[name]:
            valid = list(CHOICES[name]) + list(VALUE_ALIASES.get(name, {}))
            raise _bad(path, key, f"= {quote(raw)} is not one of {', '.join(CHOICES[name])}"
                                  f"{closest(word, valid)}")
        if value != raw:
            note = f"read {raw!r} as {value!r}"
    elif kind == "strlist":
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise _bad(path, key, f"= {quote(raw)} must be a list of symbols")
        value = raw
    elif kind == "str":
        if not isinstance(raw, str) or not raw.strip():
            raise _bad(path, key, f"= {quote(raw)} must be a non-empty string")
        value = raw
    elif kind == "bool":  # SEMANTICS §8 funding switch (and any other true/false parameter)
        if not isinstance(raw, bool):
            raise _bad(path, key, f"= {quote(raw)} must be true or false")
        value = raw
    else:
        value = raw
    try:
        value = check_value(name, value, f"{path}: {_key(key)}")
    except SweepError as exc:  # a minimum, a maximum: the message already names file and key
        raise SweepError(str(exc).splitlines()[0]) from None
    return LiveValue(key.rsplit(".", 1)[-1], raw, value, note)


def _object(path: Path):
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        # json keeps the last of two equal keys silently: a live file stating a parameter
        # twice would be checked on one of its values only.
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                raise SweepError(f"{path}: key '{_key(k)}' is given twice in one object; keep one")
            out[k] = v
        return out

    return pairs


def _parse(path: Path) -> Any:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the live configuration ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is valid UTF-8 and is skipped
    except UnicodeDecodeError as exc:
        raise SweepError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                         "a live configuration is a UTF-8 JSON file") from None
    try:
        return json.loads(text, object_pairs_hook=_object(path))
    except RecursionError:
        raise SweepError(f"{path}: not valid JSON for a live configuration (nested too deeply)") from None
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        raise SweepError(f"{path}: not valid JSON ({msg}{where})") from None


def read_live(path: str | Path) -> LiveConfig:
    """Read and check a live configuration file; a malformed one raises ``SweepError``."""
    path = Path(path)
    doc = _parse(path)
    if not isinstance(doc, dict):
        raise SweepError(f"{path}: the live configuration must be a JSON object with a 'params' key, "
                         f"not {_kind(doc)}")
    unknown = [("-", k, doc[k], closest(k, TOP_KEYS)) for k in doc if k not in TOP_KEYS]
    if "params" not in doc:
        raise SweepError(f"{path}: missing key 'params' (the parameters per factor)")
    if not isinstance(doc["params"], dict):
        raise _bad(path, "params", f"must be an object of factor -> parameters, not {_kind(doc['params'])}")
    params: dict[str, dict[str, LiveValue]] = {}
    for factor, given in doc["params"].items():
        if factor not in FACTORS:
            raise _bad(path, f"params.{factor}", f"is not a factor{closest(factor, FACTORS)}")
        if not isinstance(given, dict):
            raise _bad(path, f"params.{factor}", f"must be an object of parameter -> value, not {_kind(given)}")
        read: dict[str, LiveValue] = {}
        for key, raw in given.items():
            where = f"params.{factor}.{key}"
            if key == "factor":
                if raw != factor:
                    raise _bad(path, where, f"= {quote(raw)} contradicts its key '{factor}'")
                continue
            name = KEY_ALIASES.get(key, key)
            if name not in PARAMS:
                unknown.append((factor, key, raw, closest(key, list(PARAMS) + list(KEY_ALIASES))))
                continue
            if name in read:
                raise _bad(path, where, f"and params.{factor}.{_key(read[name].key)} both set {name}; keep one")
            v = read_value(name, raw, path, where)
            if key != name and key != EXPORT_KEY.get(name):
                v.note = f"read key '{key}' as {name}" + (f"; {v.note}" if v.note else "")
            read[name] = v
        params[factor] = read
    weights = None
    if "strategy_weights" in doc:
        sw = doc["strategy_weights"]
        if not isinstance(sw, dict):
            raise _bad(path, "strategy_weights", f"must be an object of factor -> weight, not {_kind(sw)}")
        weights = {}
        for factor, raw in sw.items():
            if factor not in FACTORS:
                raise _bad(path, f"strategy_weights.{factor}", f"is not a factor{closest(factor, FACTORS)}")
            v, note = _number(raw, False, path, f"strategy_weights.{factor}")
            weights[factor] = LiveValue(factor, raw, v, note)
    prov = doc.get("provenance", {})
    if not isinstance(prov, dict):
        raise _bad(path, "provenance", f"must be an object, not {_kind(prov)}")
    _check_provenance(prov, path)
    return LiveConfig(path, params, weights, prov, unknown)


def _check_provenance(prov: dict[str, Any], path: Path) -> None:
    """The provenance entries ``sweep check`` reads must have the shape export writes."""
    for key in ("weights", "data_fingerprint"):
        if prov.get(key) is not None and not isinstance(prov[key], str):
            raise _bad(path, f"provenance.{key}", f"= {quote(prov[key])} must be a string")
    win = prov.get("evaluation_window")
    if win is None:
        return
    if not isinstance(win, dict):
        raise _bad(path, "provenance.evaluation_window", f"must be an object with start and end, not {_kind(win)}")
    for key in ("start", "end"):
        if win.get(key) is not None and not isinstance(win[key], str):
            raise _bad(path, f"provenance.evaluation_window.{key}", f"= {quote(win[key])} must be a date string")


def _kind(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(v), type(v).__name__)
