"""Every kind's report opened in a real headless Chromium, as a reader would, at 800 and 1400 px:
nothing is wider than the window (outside a sideways-scrolling table wrapper), every image
loaded, and the first screen holds the verdict.

Needs selenium (the ``test`` extra) and Debian's ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them); without them the test is skipped, saying which is missing.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

import sweep
from sweep.report import page as _report

WIDTHS = (800, 1400)
HEIGHT = 900  # the window; the first screen is its inner height
CHROMIUM = ("/usr/bin/chromium", "chromium")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")

HEAD = """
[study]
name = "{name}"
kind = "{kind}"
objective = "sharpe"
data = "{data}"

[backtest]
fee_bps = 10
slippage_bps = 5
"""
STUDIES = {
    "grid": ("grid", """
[grid]
factor = ["volatility"]
rebalance_days = [1, 2, 3, 5]
window = [5, 10]
weighting = ["equal", "risk_parity"]
"""),
    "multi_factor": ("grid", """
[grid]
factor = ["volatility", "momentum", "size"]
rebalance_days = [1, 2, 3]
phase = "all"
long_allocation = [0.5, 6.0]
"""),
    "optuna": ("optuna", """
[space]
factor = ["volatility"]
rebalance_days = {low = 1, high = 6}
window = {low = 5, high = 12}

[optuna]
n_trials = 8
sampler = "random"
seed = 1
"""),
    "walk_forward": ("walk_forward", """
[grid]
factor = ["volatility"]
rebalance_days = [1, 3]
window = [5, 10]

[walk_forward]
train_days = 90
test_days = 45
"""),
    "monte_carlo": ("monte_carlo", """
[grid]
factor = ["volatility"]
rebalance_days = [1, 3]
window = [5, 10]

[monte_carlo]
method = "block_bootstrap"
n_samples = 5
block_days = 10
seed = 2
"""),
    "diagnostics": ("diagnostics", """
[grid]
factor = ["volatility", "momentum"]
window = [5, 10]

[diagnostics]
horizons = [1, 5, 10]
lags = 10
"""),
}

# What the page reports, measured in the browser: the widest element outside a scroll
# wrapper, the images, and where the verdict sits.
MEASURE = """
const W = window.innerWidth;
const wide = [];
for (const el of document.querySelectorAll('body *')) {
  const wrap = el.parentElement && el.parentElement.closest('.scroll');
  if (wrap) continue;  // inside a sideways-scrolling wrapper: it may be wider
  const r = el.getBoundingClientRect();
  if (r.width === 0 && r.height === 0) continue;  // not rendered (a closed <details>)
  if (r.right > W + 0.5) wide.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: right ${r.right}`);
}
const v = document.getElementById('verdict');
const vr = v ? v.getBoundingClientRect() : null;
return {
  scrollWidth: document.documentElement.scrollWidth, innerWidth: W, innerHeight: window.innerHeight,
  wide: wide,
  images: Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth]),
  verdict: vr ? [vr.top + window.scrollY, vr.bottom + window.scrollY] : null,
};
"""


def _found(candidates: tuple[str, ...]) -> str | None:
    for c in candidates:
        path = shutil.which(c) if "/" not in c else (c if Path(c).exists() else None)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    chromium, driver = _found(CHROMIUM), _found(CHROMEDRIVER)
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run does it)")
    if driver is None:
        pytest.skip("chromedriver is not installed (Debian: apt-get install chromium-driver; .ci/run does it)")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--hide-scrollbars", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    try:
        d = webdriver.Chrome(service=Service(driver), options=opts)
    except WebDriverException as exc:
        pytest.skip(f"headless chromium would not start: {str(exc).strip().splitlines()[0]}")
    yield d
    d.quit()


@pytest.fixture(scope="session")
def pages(tmp_path_factory):
    """A small study of every kind on one synthetic panel, a portfolio of the multi-factor
    grid, and each one's report."""
    base = tmp_path_factory.mktemp("browser")
    data = base / "panel.parquet"
    sweep.synth_panel(n_symbols=14, n_days=320, seed=5, start=dt.date(2019, 9, 1)).write_parquet(data)
    folders = {}
    for name, (kind, body) in STUDIES.items():
        study = base / f"{name}.toml"
        study.write_text(HEAD.format(name=f"browser_{name}", kind=kind, data=data) + body)
        folders[name] = base / "results" / name
        sweep.run_study(sweep.load_study(study), out=folders[name], progress=False, jobs=1)
    pf = base / "portfolio.toml"
    pf.write_text(f'[study]\nname = "browser_portfolio"\nkind = "portfolio"\n\n[portfolio]\n'
                  f'results = ["{folders["multi_factor"]}"]\nweights = "equal"\n')
    folders["portfolio"] = base / "results" / "portfolio"
    sweep.run_study(sweep.load_study(pf), out=folders["portfolio"], progress=False, jobs=1)
    (base / "pages").mkdir()
    return {name: _report.write_report(folder, base / "pages" / f"{name}.html") for name, folder in folders.items()}


def test_every_report_fits_the_window_loads_its_images_and_opens_on_the_verdict(browser, pages):
    assert set(pages) == {"grid", "multi_factor", "optuna", "walk_forward", "monte_carlo", "portfolio", "diagnostics"}
    problems = []
    for name, page in pages.items():
        n_charts = len(list(page.with_name(page.stem + "_charts").glob("*.png")))
        for width in WIDTHS:
            browser.set_window_size(width, HEIGHT)
            browser.get(page.resolve().as_uri())
            m = browser.execute_script(MEASURE)
            where = f"{name} at {width} px"
            if m["scrollWidth"] > m["innerWidth"]:
                problems.append(f"{where}: the page is {m['scrollWidth']} px wide in a {m['innerWidth']} px window")
            problems += [f"{where}: wider than the window: {w}" for w in m["wide"]]
            if len(m["images"]) != n_charts or n_charts == 0:
                problems.append(f"{where}: {len(m['images'])} images for {n_charts} charts")
            problems += [f"{where}: image '{alt}' did not load" for alt, ok, w in m["images"] if not (ok and w > 0)]
            if m["verdict"] is None:
                problems.append(f"{where}: no element with id 'verdict'")
            elif m["verdict"][1] > m["innerHeight"]:
                problems.append(f"{where}: the verdict ends at {m['verdict'][1]:.0f} px, below the first screen "
                                f"({m['innerHeight']} px)")
    assert not problems, "\n".join(problems)
