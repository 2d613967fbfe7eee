"""The command line on bad input: one clear line on stderr, exit code 2, nothing left behind.

Every test runs ``python -m sweep`` as a subprocess with a fresh ``tmp_path`` as
its working directory, so a relative ``results/`` would land there. A refused
command must:

* exit with code 2 and print nothing on stdout;
* print exactly one line on stderr, with no traceback, that names the file
  and the key, column or row at fault;
* leave the working directory exactly as it was (no results folder, no
  temporary file), and leave an existing results folder untouched.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import sweep

SYMBOLS = ("AAA", "BBB", "BTC", "CCC", "DDD", "EEE")
START = dt.date(2021, 1, 1)
DAYS = 120

# The valid study every bad one is derived from (one change at a time).
BASE_STUDY = {"name": "cli_test", "kind": "grid", "objective": "sharpe"}
BASE_BACKTEST = {"factor": "volatility", "fee_bps": 10, "vol_window": 14}
BASE_GRID = {"window": [5, 10], "rebalance_days": [1, 7], "weighting": ["equal", "risk_parity"]}


# ---- helpers -------------------------------------------------------------------


def long_table(days: int = DAYS, symbols=SYMBOLS, market_cap: bool = True, seed: int = 0) -> pl.DataFrame:
    """A valid long table: every (date, symbol), random-walk closes, optional market caps."""
    rng = np.random.default_rng(seed)
    n = len(symbols)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.03, (days, n)), axis=0))
    cols = {
        "date": np.repeat(np.arange(np.datetime64(START), np.datetime64(START) + days), n),
        "symbol": list(symbols) * days,
        "close": close.ravel(),
    }
    if market_cap:
        cols["market_cap"] = (close * np.arange(1, n + 1) * 1e7).ravel()
    return pl.DataFrame(cols).with_columns(pl.col("date").cast(pl.Date))


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(value)


def tree(root: Path) -> dict[str, tuple[int, int] | None]:
    """Every path under ``root`` with its size and modification time (None for folders)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.stat()
        out[str(p.relative_to(root))] = None if p.is_dir() else (st.st_size, st.st_mtime_ns)
    return out


class Sandbox:
    """A working directory with a valid data file and helpers to write studies and run the CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.data = self.write_data("panel.parquet", long_table())

    def write_data(self, name: str, df: pl.DataFrame) -> Path:
        path = self.root / name
        if path.suffix == ".csv":
            df.write_csv(path)
        else:
            df.write_parquet(path)
        return path

    def study(self, fname: str = "study.toml", *, study=None, backtest=None, grid=None) -> Path:
        """Write the base study with some keys changed (a value of None removes the key)."""
        sections = {
            "study": {**BASE_STUDY, "data": str(self.data)},
            "backtest": dict(BASE_BACKTEST),
            "grid": dict(BASE_GRID),
        }
        for name, changes in (("study", study), ("backtest", backtest), ("grid", grid)):
            for key, value in (changes or {}).items():
                if value is None:
                    sections[name].pop(key, None)
                else:
                    sections[name][key] = value
        text = "".join(
            f"[{name}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in body.items()) + "\n"
            for name, body in sections.items()
        )
        path = self.root / fname
        path.write_text(text)
        return path

    def run(self, *args) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "sweep", *map(str, args)], cwd=self.root,
                              capture_output=True, text=True, timeout=300)

    def fails(self, *args) -> str:
        """Run a command that must be refused cleanly; return its one stderr line."""
        before = tree(self.root)
        had_results = (self.root / "results").exists()
        r = self.run(*args)
        err = r.stderr
        assert "Traceback" not in err, f"traceback on stderr:\n{err}"
        assert r.returncode == 2, f"exit code {r.returncode}, stderr:\n{err}"
        lines = err.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
        assert r.stdout == "", f"unexpected stdout: {r.stdout!r}"
        if not had_results:
            assert not (self.root / "results").exists(), "a results folder was created"
        assert tree(self.root) == before, "files were created or changed"
        return lines[0]


def names(line: str, *needles) -> None:
    for needle in needles:
        assert str(needle) in line, f"{str(needle)!r} is not named in: {line}"


@pytest.fixture
def sb(tmp_path) -> Sandbox:
    return Sandbox(tmp_path)


# ---- bad data --------------------------------------------------------------------


def test_duplicate_date_symbol(sb):
    df = long_table()
    dup_row = 7 * len(SYMBOLS) + 2  # 2021-01-08, BTC
    bad = sb.write_data("dup.parquet", pl.concat([df, df[dup_row:dup_row + 1]]))
    line = sb.fails("run", sb.study(study={"data": str(bad)}))
    names(line, bad, "duplicate", "BTC", f"row {dup_row}", f"row {df.height}")


@pytest.mark.parametrize("value", [0.0, -3.5])
def test_non_positive_close(sb, value):
    df = long_table()
    row = 10 * len(SYMBOLS) + 4  # 2021-01-11, DDD
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(value)
                         .otherwise(pl.col("close")).alias("close"))
    bad = sb.write_data("nonpos.parquet", df)
    line = sb.fails("run", sb.study(study={"data": str(bad)}))
    names(line, bad, "'close'", f"row {row}", "DDD", f"close={value!r}")


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_nan_close(sb, fmt):
    df = long_table()
    row = 3 * len(SYMBOLS) + 1  # 2021-01-04, BBB
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == row).then(float("nan"))
                         .otherwise(pl.col("close")).alias("close"))
    bad = sb.write_data(f"nan.{fmt}", df)
    line = sb.fails("run", sb.study(study={"data": str(bad)}))
    names(line, bad, "'close'", f"row {row}", "BBB", "nan")


def test_missing_close_column(sb):
    bad = sb.write_data("noclose.parquet", long_table().drop("close"))
    line = sb.fails("run", sb.study(study={"data": str(bad)}))
    names(line, bad, "missing", "'close'")


def test_unparsable_date_in_csv(sb):
    good = sb.write_data("good.csv", long_table())
    lines = good.read_text().splitlines()
    row = 5  # data row 5 = file line 7 (after the header)
    assert lines[row + 1].startswith("2021-01-01,")
    lines[row + 1] = "2020-13-45" + lines[row + 1][len("2021-01-01"):]
    bad = sb.root / "baddate.csv"
    bad.write_text("\n".join(lines) + "\n")
    line = sb.fails("run", sb.study(study={"data": str(bad)}))
    names(line, bad, "'date'", "2020-13-45", f"row {row}")


def test_missing_data_file(sb):
    missing = sb.root / "nowhere" / "panel.parquet"
    line = sb.fails("run", sb.study(study={"data": str(missing)}))
    names(line, missing)


def test_data_shorter_than_warm_up(sb):
    short = sb.write_data("short.parquet", long_table(days=60))
    line = sb.fails("run", sb.study(study={"data": str(short)}, grid={"window": [5, 90]}))
    names(line, short, "60 days", "90")


def test_size_without_market_cap(sb):
    nomc = sb.write_data("nomc.parquet", long_table(market_cap=False))
    path = sb.study(study={"data": str(nomc)}, backtest={"factor": "size"}, grid={"window": None})
    line = sb.fails("run", path)
    names(line, nomc, path, "size", "'market_cap'")


def test_carry_without_funding_rate(sb):
    path = sb.study(backtest={"factor": "carry"}, grid={"window": [1, 3]})
    line = sb.fails("run", path)
    names(line, sb.data, path, "carry", "'funding_rate'")


# ---- bad study files ----------------------------------------------------------------


def test_not_valid_toml(sb):
    path = sb.root / "broken.toml"
    path.write_text('[study]\nname = "unterminated\n')
    line = sb.fails("run", path)
    names(line, path, "TOML", "line 2")


def test_unknown_factor_suggests_the_closest(sb):
    path = sb.study(backtest={"factor": "volatilty"})
    line = sb.fails("run", path)
    names(line, path, "[backtest]", "factor", "'volatilty'", "did you mean 'volatility'")


def test_unknown_key_in_backtest(sb):
    path = sb.study(backtest={"rebalance_dayz": 7})
    line = sb.fails("run", path)
    names(line, path, "[backtest]", "'rebalance_dayz'", "did you mean 'rebalance_days'")


def test_unknown_key_in_grid(sb):
    path = sb.study(grid={"windows": [5, 10], "window": None})
    line = sb.fails("run", path)
    names(line, path, "[grid]", "'windows'", "did you mean 'window'")


def test_unknown_key_in_study(sb):
    path = sb.study(study={"objectiv": "sharpe"})
    line = sb.fails("run", path)
    names(line, path, "[study]", "objectiv", "did you mean 'objective'")


@pytest.mark.parametrize("section, value", [("backtest", "30"), ("grid", [5, 30.5])],
                         ids=["string-in-backtest", "float-in-grid"])
def test_wrong_type(sb, section, value):
    path = sb.study(**{section: {"window": value}}, **({"grid": {"window": None}} if section == "backtest" else {}))
    line = sb.fails("run", path)
    shown = repr(value) if section == "backtest" else "30.5"
    names(line, path, f"[{section}]", f"window = {shown}", "integer")


@pytest.mark.parametrize("factor, window, minimum",
                         [("volatility", 1, 2), ("skewness", 2, 3), ("kurtosis", 3, 4), ("beta", 1, 2)])
def test_window_below_the_feature_minimum(sb, factor, window, minimum):
    path = sb.study(backtest={"factor": factor}, grid={"window": [10, window]})
    line = sb.fails("run", path)
    names(line, path, f"window = {window}", f"minimum {minimum}", factor)


def test_rebalance_days_zero(sb):
    path = sb.study(grid={"rebalance_days": [1, 0]})
    line = sb.fails("run", path)
    names(line, path, "[grid]", "rebalance_days = 0", "minimum 1")


@pytest.mark.parametrize("phase", [7, 9])
def test_phase_not_below_rebalance_days(sb, phase):
    path = sb.study(grid={"rebalance_days": [7], "phase": [0, phase]})
    line = sb.fails("run", path)
    names(line, path, f"phase = {phase}", "rebalance_days = 7")


def test_q_one(sb):
    path = sb.study(grid={"q": [5, 1]})
    line = sb.fails("run", path)
    names(line, path, "[grid]", "q = 1", "minimum 2")


def test_empty_axis(sb):
    path = sb.study(grid={"window": []})
    line = sb.fails("run", path)
    names(line, path, "[grid] window", "empty")


# ---- bad command lines ------------------------------------------------------------


def test_jobs_zero(sb):
    line = sb.fails("run", sb.study(), "--jobs", "0")
    names(line, "--jobs", "0")


def test_show_folder_without_results(sb):
    empty = sb.root / "not_results"
    empty.mkdir()
    line = sb.fails("show", empty)
    names(line, empty, "trials.parquet")


# ---- a finished run: show, and a later bad run into the same folder ----------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A sandbox with a completed valid run in ``<root>/runs/good``."""
    box = Sandbox(tmp_path_factory.mktemp("finished"))
    out = box.root / "runs" / "good"
    r = box.run("run", box.study("good.toml"), "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert (out / "trials.parquet").exists() and (out / "manifest.json").exists()
    return box, out


def test_show_unknown_by_metric(finished):
    box, out = finished
    line = box.fails("show", out, "--by", "sharp")
    names(line, "--by", "'sharp'", "did you mean 'sharpe'")


@pytest.mark.parametrize("bad", ["factor", "carry"], ids=["bad-study", "bad-for-the-data"])
def test_bad_run_leaves_earlier_results_untouched(finished, bad):
    box, out = finished
    contents = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    if bad == "factor":  # refused while the study file is read
        path = box.study(f"bad_{bad}.toml", backtest={"factor": "volatilty"})
    else:  # refused once the data is loaded
        path = box.study(f"bad_{bad}.toml", backtest={"factor": "carry"}, grid={"window": [1, 3]})
    line = box.fails("run", path, "--out", out)  # fails() also checks sizes and mtimes
    names(line, path)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == contents


# ---- what works: validate, --version, --help ----------------------------------------


def test_validate_prints_the_count_and_the_evaluation_window(sb):
    path = sb.study()
    before = tree(sb.root)
    r = sb.run("validate", path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    n_configs = 1
    for axis in BASE_GRID.values():
        n_configs *= len(axis)
    m = re.search(r"configs\s+(\d+)", r.stdout)
    assert m and int(m.group(1)) == n_configs == 8, r.stdout
    # risk_parity is on an axis, so W = max(window axis, vol_window) = 14 (SEMANTICS §7).
    warmup = max(max(BASE_GRID["window"]), BASE_BACKTEST["vol_window"])
    first = START + dt.timedelta(days=warmup)
    last = START + dt.timedelta(days=DAYS - 1)
    m = re.search(r"evaluation\s+(\S+) \.\. (\S+) \((\d+) days\)", r.stdout)
    assert m, r.stdout
    assert (m.group(1), m.group(2), int(m.group(3))) == (str(first), str(last), DAYS - warmup)
    assert tree(sb.root) == before, "validate wrote files"


def test_version(sb):
    r = sb.run("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"sweep {sweep.__version__}"


@pytest.mark.parametrize("args, option", [(("run", "--help"), "--jobs"),
                                          (("data", "synth", "--help"), "--symbols")])
def test_help(sb, args, option):
    r = sb.run(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage:") and option in r.stdout
    assert r.stderr == ""


# ---- inputs found to break the rule (see the docstrings) -------------------------


def test_integer_too_large_for_the_kernels(sb):
    """``q = 2**63`` passes validation (``sweep validate`` exits 0) but ``sweep run``
    crashes with OverflowError in ``compile_configs`` (exit 1, traceback) after it
    has created ``results/<name>/.partial/state.json``."""
    path = sb.study(grid={"q": [9223372036854775808]})
    line = sb.fails("run", path)
    names(line, path, "q")


@pytest.mark.parametrize("key, value", [("end", "2021-01-05"), ("start", "2020-06-01")],
                         ids=["end-before-warm-up", "start-outside-data"])
def test_evaluation_window_errors_name_the_study_file(sb, key, value):
    """The window errors name neither the study file nor, for ``end``, the key:
    ``the evaluation window is empty: start 2021-01-15 is after end 2021-01-05``."""
    path = sb.study(study={key: value})
    line = sb.fails("run", path)
    names(line, path, key, value)


def test_out_is_an_existing_file(sb):
    """``--out`` naming a file: NotADirectoryError traceback from ``partial.mkdir``, exit 1."""
    target = sb.root / "occupied"
    target.write_text("not a folder")
    line = sb.fails("run", sb.study(), "--out", target)
    names(line, target)


@pytest.mark.parametrize("broken", ["manifest.json", "trials.parquet"])
def test_show_corrupt_results(finished, broken, tmp_path):
    """A truncated manifest.json (JSONDecodeError) or trials.parquet (polars
    ComputeError) makes ``sweep show`` exit 1 with a traceback."""
    box, out = finished
    copy = Sandbox(tmp_path)
    folder = copy.root / "copied"
    folder.mkdir()
    for p in out.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / broken).write_bytes((folder / broken).read_bytes()[:5])
    line = copy.fails("show", folder)
    names(line, folder / broken)


# ---- issue 10: data synth's extension, a portfolio study's legs, option help ----------


@pytest.mark.parametrize("name", ["x.txt", "panel", "panel.parquet.bak"])
def test_synth_refuses_an_extension_other_than_parquet_or_csv(sb, name):
    line = sb.fails("data", "synth", "--out", name, "--symbols", "3", "--days", "10")
    names(line, name, ".parquet", ".csv")


def portfolio_study(sb: Sandbox, legs: list[str]) -> Path:
    path = sb.root / "pf.toml"
    path.write_text('[study]\nname = "pf"\nkind = "portfolio"\n\n[portfolio]\nresults = ['
                    + ", ".join(f'"{leg}"' for leg in legs) + "]\n")
    return path


@pytest.mark.parametrize("command", ["validate", "run"])
def test_portfolio_with_a_missing_leg_names_the_study_to_run(sb, command):
    """``validate`` printed "valid" and then failed with a traceback-free but unhelpful line."""
    leg = sb.study("leg_a.toml", study={"name": "leg_a"})
    path = portfolio_study(sb, ["results/leg_a"])
    line = sb.fails(command, path)  # also: nothing on stdout, so "valid" was never printed
    names(line, path, "results/leg_a", f"sweep run {leg}")


def test_portfolio_leg_of_another_schema_is_refused_by_validate(finished, tmp_path):
    box, out = finished
    copy = Sandbox(tmp_path)
    leg = copy.root / "results" / "old"
    leg.mkdir(parents=True)
    for p in out.iterdir():
        (leg / p.name).write_bytes(p.read_bytes())
    manifest = json.loads((leg / "manifest.json").read_text())
    manifest["schema_version"] = 1
    (leg / "manifest.json").write_text(json.dumps(manifest))
    line = copy.fails("validate", portfolio_study(copy, ["results/old"]))
    names(line, Path("results") / "old" / "manifest.json", "schema_version 1", "sweep run")


def test_validate_portfolio_with_its_legs(finished, tmp_path):
    box, out = finished
    path = box.root / "pf_ok.toml"
    path.write_text(f'[study]\nname = "pf_ok"\nkind = "portfolio"\n\n[portfolio]\nresults = ["{out}"]\n')
    r = box.run("validate", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{path}: valid portfolio study 'pf_ok'") and "volatility" in r.stdout


@pytest.mark.parametrize("args, defaults", [
    (("validate", "--help"), {"--data": "[study] data", "--funding": "[study] funding"}),
    (("data", "synth", "--help"), {"--symbols": "200", "--days": "3650", "--seed": "0", "--start": "2015-01-01"}),
])
def test_help_states_every_default(sb, args, defaults):
    r = sb.run(*args)
    assert r.returncode == 0, r.stderr
    options = " ".join(r.stdout.split("options:")[1].split())  # one line, single spaces
    for option, default in defaults.items():
        text = options.split(f" {option} ")[1].split(" --")[0]
        assert f"(default {default}" in text or f"(default: {default}" in text, (option, text)
