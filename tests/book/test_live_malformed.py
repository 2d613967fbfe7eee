"""``sweep check`` with a malformed live JSON (issue 11, point 3): invalid UTF-8, nesting a
thousand levels deep, a list where an object belongs, NaN weights, numbers beyond a float,
a key given twice... Each is one line naming the file, exit code 2, no traceback; so is a
study file with a byte of invalid UTF-8."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import sweep
from sweep.book.live import read_live
from sweep.cli.main import main
from sweep.core.errors import SweepError
from sweep.engine.params import PARAMS

ROOT = Path(__file__).resolve().parents[2]
GOOD_PARAMS = {"volatility": {"rebalance_days": 5, "weighting_method": "equal"}}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A small finished grid: ``sweep check`` has a real study to compare with."""
    tmp = tmp_path_factory.mktemp("results")
    sweep.synth_panel(n_symbols=10, n_days=120, seed=5).write_parquet(tmp / "panel.parquet")
    (tmp / "s.toml").write_text('[study]\nname = "s"\ndata = "panel.parquet"\n[backtest]\nfactor = "volatility"\n'
                                "window = 10\n[grid]\nrebalance_days = [1, 5]\n")
    sweep.run_study(sweep.load_study(tmp / "s.toml"), out=tmp / "out", progress=False)
    return tmp / "out"


def check(live: Path, results: Path, capsys) -> tuple[int, str, str]:
    code = main(["check", str(live), str(results)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code: int, err: str, path: Path) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and str(path) in lines[0], err
    return lines[0]


def deep(depth: int, open_: str = "[", close: str = "]") -> str:
    return open_ * depth + close * depth


# Whole files that are not a live configuration: bytes, and what the message must say.
FILES = {
    "invalid_utf8": (b'{"params": {"volatility": {"rebalance_days": 5}}, "note": "caf\xe9"}', "not UTF-8"),
    "utf16": ('{"params": {}}'.encode("utf-16"), "not UTF-8"),
    "nested_1000_lists": (deep(1000).encode(), "nested too deeply"),
    "nested_100000_lists": (deep(100_000).encode(), "nested too deeply"),
    "nested_1000_objects": (("{\"a\": " * 1000 + "1" + "}" * 1000).encode(), "nested too deeply"),
    "nested_in_a_parameter": (('{"params": {"volatility": {"window": ' + deep(3000) + "}}}").encode(),
                              "nested too deeply"),
    "empty": (b"", "not valid JSON"),
    "cut": (b'{"params": {"volatility": {"rebalance_days": 5', "not valid JSON"),
    "top_level_list": (b'[{"params": {}}]', "must be a JSON object"),
    "top_level_number": (b"7", "must be a JSON object"),
    "top_level_null": (b"null", "must be a JSON object"),
    "params_a_list": (b'{"params": [{"volatility": {}}]}', "params must be an object"),
    "factor_a_list": (b'{"params": {"volatility": [5, "equal"]}}', "params.volatility must be an object"),
    "weights_a_list": (b'{"params": {}, "strategy_weights": [1.0]}', "strategy_weights must be an object"),
    "provenance_a_list": (b'{"params": {}, "provenance": ["x"]}', "provenance must be an object"),
    "window_a_list": (b'{"params": {}, "provenance": {"evaluation_window": ["2021-01-01", "2021-02-01"]}}',
                      "provenance.evaluation_window must be an object"),
    "window_start_a_number": (b'{"params": {}, "provenance": {"evaluation_window": {"start": 20210101}}}',
                              "provenance.evaluation_window.start"),
    "prov_weights_a_list": (b'{"params": {}, "provenance": {"weights": ["equal"]}}', "provenance.weights"),
    "nan_weight": (b'{"params": {}, "strategy_weights": {"volatility": NaN}}', "must be finite"),
    "infinite_weight": (b'{"params": {}, "strategy_weights": {"volatility": -Infinity}}', "must be finite"),
    "nan_weight_string": (b'{"params": {}, "strategy_weights": {"volatility": "nan"}}', "must be finite"),
    "weight_overflowing_a_float": (b'{"params": {}, "strategy_weights": {"volatility": 1e400}}', "must be finite"),
    "weight_a_huge_integer": (('{"params": {}, "strategy_weights": {"volatility": ' + "9" * 400 + "}}").encode(),
                              "out of range"),
    "weight_a_list": (b'{"params": {}, "strategy_weights": {"volatility": [0.5]}}', "must be a number"),
    "nan_parameter": (b'{"params": {"volatility": {"fee_bps": NaN}}}', "must be finite"),
    "huge_whole_parameter": (('{"params": {"volatility": {"window": ' + "9" * 5000 + "}}}").encode(),
                             "not valid JSON"),  # Python refuses to read an integer of 5,000 digits
    "key_given_twice": (b'{"params": {"volatility": {"rebalance_days": 5, "rebalance_days": 7}}}',
                        "given twice"),
    "key_with_a_newline": (b'{"params": {"volatility": {"window\\nx": 5}, "vol\\natility": {}}}', "not a factor"),
}


@pytest.mark.parametrize("case", list(FILES))
def test_a_malformed_live_file_is_one_line_and_exit_2(tmp_path, results, capsys, case):
    data, expected = FILES[case]
    live = tmp_path / "live.json"
    live.write_bytes(data)
    line = one_line_error(*check(live, results, capsys)[::2], live)
    assert expected in line, line
    assert len(line) < 400, line  # a quoted value is cut short


def test_the_live_path_is_a_folder(tmp_path, results, capsys):
    code, _, err = check(tmp_path, results, capsys)
    assert "cannot read the live configuration" in one_line_error(code, err, tmp_path)


def test_a_byte_order_mark_is_read(tmp_path, results, capsys):
    live = tmp_path / "bom.json"
    live.write_bytes(b"\xef\xbb\xbf" + json.dumps({"params": GOOD_PARAMS}).encode())
    assert read_live(live).params["volatility"]["rebalance_days"].value == 5


HOSTILE = [None, True, [], [1], {}, {"a": 1}, "", "x", float("nan"), float("inf"), 1e300, -1e300, 10**30, -(10**30),
           2**63, 1.5, -1, 0, "7", " 7 ", "equal", ["BTC"], [None], "\n", "é" * 500]


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_parameter_reads_or_refuses_every_hostile_value_in_one_line(tmp_path, name):
    """No value of any shape, for any parameter, escapes as anything but a one-line ``SweepError``."""
    for k, raw in enumerate(HOSTILE):
        path = tmp_path / f"{name}_{k}.json"
        path.write_text(json.dumps({"params": {"volatility": {name: raw}}}))
        try:
            live = read_live(path)
        except SweepError as exc:
            msg = str(exc)
            assert "\n" not in msg and msg.startswith(f"{path}: ") and len(msg) < 400, msg
            continue
        if name == "factor":  # only the factor's own name is accepted
            assert raw == "volatility"
            continue
        got = live.params["volatility"][name].value
        assert got is not None


@pytest.mark.parametrize("raw", HOSTILE)
def test_every_hostile_strategy_weight_reads_as_a_finite_number_or_is_refused(tmp_path, raw):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"params": {}, "strategy_weights": {"volatility": raw}}))
    try:
        live = read_live(path)
    except SweepError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(f"{path}: strategy_weights.volatility")
        return
    v = live.weights["volatility"].value
    assert isinstance(v, float) and v == float(str(raw).strip())


def test_a_valid_live_file_still_checks(tmp_path, results, capsys):
    """The hardening refuses only what is malformed: an export checks clean against its study."""
    live = tmp_path / "live.json"
    assert main(["export", str(results), "--live-config", str(live)]) == 0
    capsys.readouterr()
    code, out, err = check(live, results, capsys)
    assert code == 0 and "matches the studies" in out, out + err


# ---- the same through a real process: no traceback on stderr -------------------------------


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sweep", *argv], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.parametrize("case", ["invalid_utf8", "nested_1000_lists", "nested_1000_objects", "nan_weight"])
def test_python_m_sweep_check_malformed(tmp_path, results, case):
    live = tmp_path / "live.json"
    live.write_bytes(FILES[case][0])
    proc = run_cli("check", str(live), str(results))
    assert proc.returncode == 2 and proc.stdout == ""
    line = one_line_error(proc.returncode, proc.stderr, live)
    assert FILES[case][1] in line


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_study_file_with_a_byte_of_invalid_utf8(tmp_path, command):
    study = tmp_path / "bad.toml"
    text = (ROOT / "studies" / "volatility_rebalance.toml").read_bytes()
    study.write_bytes(text.replace(b"volatility_rebalance", b"volatility_r\xe9balance", 1))
    assert b"\xe9" in study.read_bytes()
    proc = run_cli(command, str(study))
    line = one_line_error(proc.returncode, proc.stderr, study)
    assert "not UTF-8" in line and "0xe9" in line
