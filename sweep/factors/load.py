"""Where a study's user factor comes from: a file, a module or an entry point.

``resolve(spec, base, where)`` registers the factor a study names and returns
its ``Code`` (name, origin, file, sha256), or None when ``spec`` is a factor
already registered under that name (a built-in, a column factor):

* ``"my_factors.py:amihud"``: function ``amihud`` of the file, a path relative
  to ``base`` (the study file's folder) or absolute; registered under the spec
  as written, its cache key carrying the file's sha256;
* ``"package.module:amihud"``: an importable module's function;
* ``"amihud"``: a name of the ``sweep.factors`` entry-point group of an
  installed package (``[project.entry-points."sweep.factors"]``).

Every failure (missing file or function, a syntax error, a module that does not
import, an unknown name, a function sweep cannot call) is one line naming the spec.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from sweep.core.errors import SweepError
from sweep.factors.registry import FACTORS, add_resolver
from sweep.factors.user import USER, forget, register_function

GROUP = "sweep.factors"  # the entry-point group of installed factors


@dataclass(frozen=True)
class Code:
    """The code a study runs: its factor name, where it comes from, the file and its sha256."""

    name: str
    origin: str  # "file", "module" or "entry point"
    target: str  # the file path, "package.module:function" or "name = package.module:function"
    path: str | None
    sha256: str | None

    def source(self) -> str:
        """``FILE (sha256 ...)``, or ``module pkg.mod:f (FILE, sha256 ...)`` for installed code."""
        digest = f"sha256 {self.sha256[:16]}" if self.sha256 else "no file"
        if self.origin == "file":
            return f"{self.path} ({digest})"
        return f"{self.origin} {self.target} ({self.path + ', ' if self.path else ''}{digest})"

    def record(self) -> dict[str, str | None]:
        """What the manifest keeps of it."""
        return {"origin": self.origin, "target": self.target, "path": self.path, "sha256": self.sha256}


def notices(codes) -> list[str]:
    """The lines ``sweep run`` and ``sweep validate`` print: one per file (or module) of code."""
    by_source: dict[str, list[str]] = {}
    for c in codes:
        by_source.setdefault(c.source(), []).append(f"'{c.name}'")
    return [f"note: this study runs code from {src}: factor{'s' if len(names) > 1 else ''} {', '.join(names)}"
            for src, names in by_source.items()]


_LOADED: dict[tuple[str, str], object] = {}  # (resolved file, sha256) -> its module, executed once


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _syntax(exc: SyntaxError, path: str) -> str:
    return f"syntax error at {path}:{exc.lineno}: {exc.msg}"


def _load_file(file: Path, spec: str, where: str) -> tuple[object, str]:
    try:
        digest = _sha256(file)
    except OSError as exc:
        raise SweepError(f"{where} = {spec!r}: cannot read {file} ({exc.strerror})") from None
    key = (str(file), digest)
    if key not in _LOADED:
        name = f"sweep_user_factors_{digest[:16]}_{''.join(c if c.isalnum() else '_' for c in file.stem)}"
        module_spec = importlib.util.spec_from_file_location(name, file)
        if module_spec is None or module_spec.loader is None:
            raise SweepError(f"{where} = {spec!r}: {file} is not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module  # dataclasses, pickling and Numba's cache look modules up by name
        try:
            module_spec.loader.exec_module(module)
        except SyntaxError as exc:
            sys.modules.pop(name, None)
            raise SweepError(f"{where} = {spec!r}: {_syntax(exc, str(file))}") from None
        except SweepError as exc:
            sys.modules.pop(name, None)
            raise SweepError(f"{where} = {spec!r}: {exc}") from None
        except BaseException as exc:  # the file's own error: one line, not a traceback
            sys.modules.pop(name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise SweepError(f"{where} = {spec!r}: importing {file} failed: {type(exc).__name__}: {exc}") from None
        _LOADED[key] = module
    return _LOADED[key], digest


def _load_module(module_name: str, spec: str, where: str) -> object:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise SweepError(f"{where} = {spec!r}: module '{module_name}': {_syntax(exc, exc.filename or module_name)}") \
            from None
    except ModuleNotFoundError as exc:
        raise SweepError(f"{where} = {spec!r}: no module named '{exc.name}' (is it installed, or on PYTHONPATH?)") \
            from None
    except Exception as exc:
        raise SweepError(f"{where} = {spec!r}: importing module '{module_name}' failed: "
                         f"{type(exc).__name__}: {exc}") from None


def _function(module: object, func: str, spec: str, where: str, what: str):
    if not func.isidentifier():
        raise SweepError(f"{where} = {spec!r}: '{func}' is not a function name (write FILE.py:function)")
    fn = getattr(module, func, None)
    if fn is None:
        found = sorted(n for n, v in vars(module).items() if hasattr(v, "__sweep_factor__"))
        hint = f"; its factors are {', '.join(found)}" if found else "; it declares no @sweep.factor"
        raise SweepError(f"{where} = {spec!r}: {what} has no function '{func}'{hint}")
    return fn


def _file_path(text: str) -> bool:
    return text.endswith(".py") or "/" in text or "\\" in text


def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """The installed ``sweep.factors`` entry points, by name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def resolve(spec: str, base: Path, where: str, name: str | None = None) -> Code | None:
    """Register the user factor ``spec`` names (see the module's docstring); None when ``spec``
    needs no loading (a registered built-in or column factor, or not a string). ``name``: the
    name to register under (default ``spec`` as written)."""
    if not isinstance(spec, str) or not spec:
        return None
    if spec in FACTORS and spec not in USER:
        return None
    head, sep, func = spec.rpartition(":")
    if sep and head == "column":
        return None  # a data column as a feature (sweep.factors.columns)
    if sep and _file_path(head):
        file = Path(head).expanduser()
        file = (file if file.is_absolute() else base / file).resolve()
        if not file.is_file():
            raise SweepError(f"{where} = {spec!r}: no file {file} (a factor file's path is relative to the "
                             f"study file's folder)")
        module, digest = _load_file(file, spec, where)
        fn = _function(module, func, spec, where, str(file))
        code = Code(name or spec, "file", str(file), str(file), digest)
    elif sep:
        if not all(part.isidentifier() for part in head.split(".")):
            raise SweepError(f"{where} = {spec!r}: '{head}' is neither a module name nor a .py file")
        module = _load_module(head, spec, where)
        fn = _function(module, func, spec, where, f"module '{head}'")
        code = _code(spec, "module", spec, module)
    else:
        ep = entry_points().get(spec)
        if ep is None:
            return None  # not a user factor: the parameter check names the known factors
        try:
            fn = ep.load()
        except SyntaxError as exc:
            raise SweepError(f"{where} = {spec!r}: entry point {ep.value}: {_syntax(exc, exc.filename or ep.value)}") \
                from None
        except Exception as exc:
            raise SweepError(f"{where} = {spec!r}: loading entry point {spec} = {ep.value} failed: "
                             f"{type(exc).__name__}: {exc}") from None
        code = _code(spec, "entry point", f"{spec} = {ep.value}", sys.modules.get(ep.module))
    current = USER.get(code.name)
    if current is None or current.fn is not fn or current.sha256 != code.sha256:
        register_function(fn, code.name, code.origin, code.path, code.sha256)
    return code


def _code(name: str, origin: str, target: str, module: object) -> Code:
    file = getattr(module, "__file__", None)
    path = Path(file) if file else None
    digest = _sha256(path) if path is not None and path.is_file() else None
    return Code(name, origin, target, str(path) if path else None, digest)


_UNAVAILABLE: dict[str, str] = {}  # user factor -> why a results folder's code could not be loaded again


def restore(manifest: dict) -> None:
    """Register again the user factors a results folder's run used (its manifest's
    ``study.code``), so a report or a portfolio can rerun their books. A file that is gone
    or changed since the run is not loaded: the factor's first use says why."""
    study = manifest.get("study") if isinstance(manifest, dict) else None
    records = study.get("code") if isinstance(study, dict) else None
    if not isinstance(records, dict):
        return
    for name, rec in records.items():
        if not isinstance(rec, dict) or (name in USER and USER[name].sha256 == rec.get("sha256")):
            continue
        try:
            code = _reload(name, rec)
        except SweepError as exc:
            _UNAVAILABLE[name] = str(exc)
            continue
        if rec.get("sha256") and code.sha256 != rec["sha256"]:
            _UNAVAILABLE[name] = (f"factor '{name}': {code.path} changed since the study ran (sha256 "
                                  f"{str(code.sha256)[:16]}, the run read {rec['sha256'][:16]}); rerun the study")
            forget(name)  # the changed file's function is not what the run ran
            continue
        _UNAVAILABLE.pop(name, None)


def _reload(name: str, rec: dict) -> Code:
    where = f"factor '{name}' of a results folder"
    if rec.get("origin") == "file" and isinstance(rec.get("path"), str):
        path = Path(rec["path"])
        return resolve(f"{path}:{name.rpartition(':')[2]}", path.parent, where, name=name)
    found = resolve(name, Path("."), where)
    if found is None:
        raise SweepError(f"{where}: entry point '{name}' is not installed any more")
    return found


def _unavailable(name: str):
    if name in _UNAVAILABLE:
        raise SweepError(_UNAVAILABLE[name])
    return None


add_resolver(_unavailable)


def factor_specs(raw: dict) -> list[str]:
    """Every factor a parsed study file names: ``factor`` in any table, a string or a list of them."""
    out: list[str] = []
    for table, values in raw.items():
        if table == "study" or not isinstance(values, dict) or "factor" not in values:
            continue
        v = values["factor"]
        for s in (v if isinstance(v, list) else [v]):
            if isinstance(s, str) and s not in out:
                out.append(s)
    return out
