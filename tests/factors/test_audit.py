"""The lookahead audit: the future replaced by noise moves no value of an honest factor, and
moves a peeking one on the very day it peeks from (``sweep.factors.audit``, ``sweep audit``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import sweep
from sweep import factors
from sweep.factors import user
from sweep.cli import audit as cli_audit
from sweep.cli.main import main
from sweep.data.panel import panel_from_arrays
from sweep.engine.params import resolve
from sweep.factors.audit import cut_days, lookahead, noisy_panel
from sweep.factors.user import features_of, is_user


@pytest.fixture(scope="module")
def panel():
    return sweep.synth(n_symbols=10, n_days=180, seed=3)


@pytest.fixture(autouse=True, scope="module")
def _built_in_registry_after():
    yield
    # Later tests see the built-in registry only: drop the column (and file) factors these resolved.
    for name in [n for n in factors.names() if ":" in n]:
        user.forget(name) if user.is_user(name) else factors.unregister(name)


def test_cut_days_spread_by_hand():
    assert cut_days(12, 5) == [1, 3, 5, 7, 9]  # floor(j * 11 / 6)
    assert cut_days(180, 5) == [29, 59, 89, 119, 149]
    assert cut_days(3, 5) == [0, 1]  # no repeats, none on the last day
    assert cut_days(1, 5) == []


def test_noisy_panel_keeps_the_past_and_changes_the_whole_future(panel):
    t = 70
    noisy = noisy_panel(panel, t, seed=1)
    assert set(noisy.fields) == set(panel.fields)
    for name, x in panel.fields.items():
        y = noisy.fields[name]
        np.testing.assert_array_equal(y[: t + 1], x[: t + 1])
        assert np.isfinite(y[t + 1:]).all(), name  # missing cells too
        assert not np.isclose(y[t + 1:], x[t + 1:]).any(), name
    assert (noisy.close[t + 1:] > 0).all() and (noisy.fields["volume"][t + 1:] >= 0).all()
    assert (noisy.fields["market_cap"][t + 1:] > 0).all()
    # A valid panel by SEMANTICS §1's rules, and derived from its own close.
    panel_from_arrays(noisy.dates, noisy.symbols, noisy.close,
                      **{k: v for k, v in noisy.fields.items() if k != "close"})
    np.testing.assert_array_equal(noisy.log_returns[: t + 1], panel.log_returns[: t + 1])
    # Seeded: the same seed, the same noise.
    np.testing.assert_array_equal(noisy_panel(panel, t, seed=1).close, noisy.close)


def _builtin_configs():
    out = []
    for name in factors.names():
        if ":" in name or is_user(name):
            continue  # user and column factors are not built-in
        out.append(resolve({"factor": name, "market_symbol": "S001"}))
    out.append(resolve({"factor": "beta", "market": "equal_weight"}))
    out += [resolve({"factor": "column:volume", "transform": how, "window": 7})
            for how in ("level", "mean", "change", "pct_change", "zscore")]
    return out


def test_every_builtin_factor_passes(panel):
    configs = _builtin_configs()
    assert {"volatility", "beta", "carry", "size", "days_from_high", "column:volume"} <= {p["factor"] for p in configs}
    report = lookahead(panel, features_of(configs))
    assert report.clean, report.lines()
    assert report.lines() == [f"no lookahead in {len(report.factors)} factors x 5 cut days"]
    assert len(report.factors) == len({factors.get(p["factor"]).cache_key(p) for p in configs})


def _peek(p):
    """Tomorrow's return, known today: reads close[t + 1]."""
    out = np.roll(p.close, -1, axis=0) / p.close - 1.0
    return np.where(np.isfinite(out) | np.isnan(p.close), out, 0.0)


def test_a_factor_reading_tomorrow_is_caught_on_the_cut_day(panel):
    mom = factors.get("momentum")
    report = lookahead(panel, [("momentum (window=10)", lambda p: mom.feature(p, window=10)), ("peek", _peek)])
    assert [leak.factor for leak in report.leaks] == ["peek"]
    leak = report.leaks[0]
    t = cut_days(panel.shape[0])[0]
    # The value of day t reads close[t + 1]: it moves on the cut day itself, for every symbol
    # with a close that day, and nowhere before.
    assert leak.cut == leak.day == str(panel.dates[t])
    assert leak.n_changed == int(np.isfinite(panel.close[t]).sum())
    i = panel.symbols.index(leak.symbol)
    np.testing.assert_array_equal(leak.before, _peek(panel)[t, i])  # the real value, NaN or not
    assert "peek" in report.lines()[0] and leak.symbol in report.lines()[0] and leak.day in report.lines()[0]
    assert report.lines()[-1].startswith("lookahead in 1 of 2 factors")


def test_a_full_sample_statistic_is_a_lookahead(panel):
    """Demeaning by the whole sample's mean is the classic quiet lookahead."""
    report = lookahead(panel, [("demeaned", lambda p: p.close - np.nanmean(p.close, axis=0))])
    assert np.isfinite(panel.close[0]).any()
    assert not report.clean and report.leaks[0].day == str(panel.dates[0])  # from the first day on


FACTORS_FILE = '''
import numpy as np
import sweep


@sweep.factor(long="high", window=None)
def peek(panel):
    """Tomorrow's return, known today: reads close[t + 1]."""
    c = panel.close
    out = np.roll(c, -1, axis=0) / c - 1.0
    return np.where(np.isfinite(out) | np.isnan(c), out, 0.0)


@sweep.factor(long="low", window=10)
def calm(panel, window):
    """Mean absolute log return over the window: honest."""
    a = np.abs(panel.log_returns)
    out = np.full(a.shape, np.nan)
    for t in range(window, a.shape[0]):
        out[t] = a[t - window + 1:t + 1].mean(axis=0)
    return out
'''

STUDY = """
[study]
name = "audited"
data = "{data}"

[grid]
factor = {factors}
window = [5, 10]
"""


@pytest.fixture
def files(tmp_path):
    data = tmp_path / "panel.parquet"
    sweep.synth_panel(n_symbols=10, n_days=200, seed=4).write_parquet(data)
    (tmp_path / "mine.py").write_text(FACTORS_FILE)

    def study(*names: str) -> str:
        path = tmp_path / f"study_{len(names)}_{abs(hash(names)) % 10**6}.toml"
        path.write_text(STUDY.format(data=data, factors=json.dumps(list(names))))
        return str(path)

    return study


def test_cli_catches_a_file_factor_reading_tomorrow(files, capsys):
    assert main(["audit", "lookahead", files("volatility", "mine.py:peek")]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("lookahead: factor mine.py:peek changed on ") and " for S0" in out[0]
    assert out[-1].startswith("lookahead in 1 of 3 factors (5 cut days: ")


def test_cli_passes_a_clean_file_factor(files, capsys):
    assert main(["audit", "lookahead", files("volatility", "mine.py:calm")]) == 0
    assert capsys.readouterr().out.strip() == "no lookahead in 4 factors x 5 cut days"


def test_first_run_refuses_a_peeking_study(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", files("mine.py:peek"), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "run refused" in err and "lookahead: factor mine.py:peek" in err
    assert not (out / "trials.parquet").exists() and not (out / "audit.json").exists()


def test_first_run_audits_once_per_study_and_file(files, tmp_path, capsys, monkeypatch):
    study, out = files("mine.py:calm"), tmp_path / "out"
    assert main(["run", study, "--out", str(out)]) == 0
    assert "lookahead audit: no lookahead in 2 factors x 5 cut days" in capsys.readouterr().err
    memory = json.loads((out / "audit.json").read_text())
    assert memory["passed"]["files"]["mine.py:calm"] == sweep.load_study(study).code["mine.py:calm"].sha256
    assert (out / "trials.parquet").exists()

    calls = []
    real = cli_audit.audit_study
    monkeypatch.setattr(cli_audit, "audit_study", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert main(["run", study, "--out", str(out), "--force", "--quiet"]) == 0
    assert calls == []  # the same study and file: not audited again
    (tmp_path / "mine.py").write_text(FACTORS_FILE + "\n# edited\n")
    assert main(["run", study, "--out", str(out), "--force", "--quiet"]) == 0
    assert calls == [1]  # a changed file is audited again


def test_a_study_of_built_in_factors_is_not_audited_on_run(files, tmp_path):
    out = tmp_path / "out"
    assert main(["run", files("volatility", "momentum"), "--out", str(out), "--quiet"]) == 0
    assert not (out / "audit.json").exists()
