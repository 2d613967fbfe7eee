"""Bad user factors through the command line: one line naming the factor or the file, exit 2.

Each case is a study naming a factor in a file beside it (or a module, or an
entry point), run with ``sweep run`` in-process (``sweep.cli.main.main``);
the error must be the only line on stderr.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import sweep
from sweep.cli.main import main
from sweep.core.errors import SweepError
from sweep.factors import user

STUDY = """
[study]
name = "bad"
data = "{data}"

[backtest]
factor = "{factor}"

[grid]
rebalance_days = [1, 2]
"""

GOOD = '''
import numpy as np
import sweep

@sweep.factor(window=5)
def good(panel, window):
    return np.asarray(panel.log_returns, dtype=np.float64).copy()
'''

CASES = [
    # (file text, factor spec, fragment of the one-line error)
    (GOOD, "nope.py:good", "no file {dir}/nope.py (a factor file's path is relative to the study file's folder)"),
    (GOOD, "f.py:missing", "f.py has no function 'missing'; its factors are good"),
    ("import numpy\ndef broken(:\n    pass\n", "f.py:broken", "syntax error at {dir}/f.py:2"),
    ("raise RuntimeError('boom')\n", "f.py:x", "importing {dir}/f.py failed: RuntimeError: boom"),
    (GOOD, "no_such_pkg_xyz.mod:f", "no module named 'no_such_pkg_xyz' (is it installed, or on PYTHONPATH?)"),
    (GOOD, "no_such_entry_point_xyz", "factor = 'no_such_entry_point_xyz' is not one of volatility"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(data, window):\n    return data.close\n", "f.py:f",
     "factor 'f.py:f': the first parameter must be 'panel'"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window, alpha):\n    return panel.close\n", "f.py:f",
     "factor 'f.py:f': parameter 'alpha' has no default"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window, *more):\n    return panel.close\n", "f.py:f",
     "factor 'f.py:f': parameter 'more' (*more): every parameter must be named, with a default"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window, tag=None):\n    return panel.close\n", "f.py:f",
     "factor 'f.py:f': parameter 'tag' = None: a default must be an int, a float, a string or a bool"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel):\n    return panel.close\n", "f.py:f",
     "factor 'f.py:f': declared window=5 but the function takes no 'window' parameter"),
    ("def f(panel, window=5):\n    return panel.close\n", "f.py:f",
     "factor 'f.py:f': 'f' is not declared a factor: decorate it with @sweep.factor"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n    return panel.close[:-1]\n", "f.py:f",
     "factor 'f.py:f' returned shape ({T1}, {N}), not the panel's ({T}, {N}) (days, symbols)"),
    ("import numpy as np, sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n"
     "    return panel.close.astype(np.float32)\n", "f.py:f", "factor 'f.py:f' returned dtype float32, not float64"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n    return panel.close.tolist()\n", "f.py:f",
     "factor 'f.py:f' returned a list, not a numpy array of shape ({T}, {N})"),
    ("import numpy as np, sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n"
     "    return np.full(panel.shape, np.nan)\n", "f.py:f",
     "factor 'f.py:f' returned nan on {first}, where the close is finite that day and the 5 days before it"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n    raise ValueError('no idea')\n", "f.py:f",
     "factor 'f.py:f' (window=5) raised ValueError: no idea"),
    ("import sweep\n@sweep.factor(window=5)\ndef f(panel, window):\n    return panel['open_interest']\n", "f.py:f",
     "the f.py:f factor (panel['open_interest']) needs the column 'open_interest', which the data does not have"),
]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "panel.parquet"
    sweep.synth_panel(n_symbols=6, n_days=60, seed=2).write_parquet(path)
    return path


@pytest.mark.parametrize("text, spec, expected", CASES, ids=[c[1] + ":" + c[2][:30] for c in CASES])
def test_one_line_exit_2(tmp_path, data_file, capsys, text, spec, expected):
    (tmp_path / "f.py").write_text(text)
    (tmp_path / "study.toml").write_text(STUDY.format(data=data_file, factor=spec))
    panel = sweep.load_panel(data_file)
    T, N = panel.shape
    # The first cell (day, then symbol) whose close and the 5 closes before are finite.
    fin = np.isfinite(panel.close)
    t0, i0 = next((t, i) for t in range(5, T) for i in range(N) if fin[t - 5:t + 1, i].all())
    try:
        rc = main(["run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out"), "--quiet", "--jobs", "1"])
    finally:
        user.forget(spec)
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if not line.startswith("note:")]
    assert rc == 2, err
    assert len(errors) == 1 and errors[0].startswith("sweep: error: "), err
    want = expected.format(dir=tmp_path, T=T, T1=T - 1, N=N, first=f"{panel.dates[t0]} for {panel.symbols[i0]}")
    assert want in errors[0]


def test_validate_names_the_code(tmp_path, data_file, capsys):
    (tmp_path / "f.py").write_text(GOOD)
    (tmp_path / "study.toml").write_text(STUDY.format(data=data_file, factor="f.py:good"))
    try:
        assert main(["validate", str(tmp_path / "study.toml")]) == 0
    finally:
        user.forget("f.py:good")
    out = capsys.readouterr().out
    import hashlib
    digest = hashlib.sha256((tmp_path / "f.py").read_bytes()).hexdigest()[:16]
    assert f"  note: this study runs code from {tmp_path / 'f.py'} (sha256 {digest}): factor 'f.py:good'\n" in out


def _panel(close, **fields):
    dates = np.arange(np.datetime64("2021-01-01"), np.datetime64("2021-01-01") + close.shape[0])
    return sweep.panel_from_arrays(dates, [f"S{i}" for i in range(close.shape[1])], close, **fields)


def test_finite_where_complete_hand_worked():
    # Window 2: day t is complete when the closes of t-2 .. t are finite (and the needs column's).
    close = np.full((10, 2), 100.0)
    close[5, 0] = np.nan  # symbol 0: days 5, 6, 7 incomplete
    volume = np.full((10, 2), 1.0)
    volume[8, 1] = np.nan  # symbol 1: with needs=("volume",), days 8 and 9 incomplete
    panel = _panel(close, volume=volume)
    out = np.zeros((10, 2))
    holes = np.zeros((10, 2), dtype=bool)
    holes[:2] = True
    holes[5:8, 0] = True
    holes[8:10, 1] = True
    out[holes] = np.nan
    user.check_output(out, panel, "f", 2, ("volume",))  # NaN exactly where incomplete: accepted
    for t, i in [(2, 0), (8, 0), (4, 1), (7, 1)]:
        bad = out.copy()
        bad[t, i] = np.inf
        with pytest.raises(SweepError, match=rf"factor 'f' returned inf on {panel.dates[t]} for S{i}, "):
            user.check_output(bad, panel, "f", 2, ("volume",))
    without_needs = out.copy()
    without_needs[8:10, 1] = 0.0
    user.check_output(without_needs, panel, "f", 2)
    with pytest.raises(SweepError, match="returned nan on 2021-01-09 for S1"):
        user.check_output(out, panel, "f", 2)  # volume not needed: days 8, 9 of S1 are complete
    assert dt.date(2021, 1, 9) == panel.dates[8].item()
