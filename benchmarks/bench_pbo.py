"""PBO by CSCV: every split for a benchmark-sized sweep, a sample of splits for a million
configurations streamed in chunks. Prints figures; run alone or from bench_sweep.py.

    python benchmarks/bench_pbo.py [--configs 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sweep.stats.overfit import MAX_PAIRS, pbo, pbo_chunks

S = 16
DAYS = 2000
CHUNK = 2048  # a results folder's chunk of configurations


def _moments(rng, c: int, counts: np.ndarray):
    """Per-block sums and sums of squares of ``c`` noise strategies with a spread of skill."""
    mean = rng.normal(0.0, 0.0004, (c, 1))
    sums = rng.normal(0.0, 1.0, (c, S)) * (0.01 * np.sqrt(counts)) + mean * counts
    sumsq = sums * sums / counts + 1e-4 * rng.chisquare(counts - 1, (c, S))
    return sums, sumsq


def _counts() -> np.ndarray:
    return np.array([DAYS // S + (b < DAYS % S) for b in range(S)], dtype=np.int64)


def bench_pbo(report, n_large: int = 1_000_000, repeat: int = 3) -> None:
    """``report(what, value, target)`` one row per figure: PBO of 3,840 configurations over
    every split, and of ``n_large`` configurations read in chunks (a sample of splits)."""
    counts = _counts()
    rng = np.random.default_rng(0)
    small = _moments(rng, 3840, counts)
    pbo(small[0][:4], small[1][:4], counts)  # compile (or load the cache) outside the timing
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = pbo(*small, counts)
        times.append(time.perf_counter() - t0)
    report(f"PBO, 3,840 configs x {S} blocks, all {res['n_combinations']:,} splits (2 threads)",
           f"{statistics.median(times):.2f} s", "<= the backtests (0.2 s)")

    # A million configurations as a results folder holds them: chunks, each generated here
    # once and kept (the figure is PBO's, not the generator's or the disk's).
    n_chunks = math.ceil(n_large / CHUNK)
    t0 = time.perf_counter()
    chunks = []
    for i in range(n_chunks):
        c = min(CHUNK, n_large - i * CHUNK)
        chunks.append(_moments(np.random.default_rng(1000 + i), c, counts))
    gen = time.perf_counter() - t0
    times, cpu = [], []
    for _ in range(max(1, repeat - 1)):
        t0, c0 = time.perf_counter(), time.process_time()
        res = pbo_chunks(lambda: iter(chunks), counts, n_large)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()  # numpy's buffers are traced; the chunks predate the start
    traced = pbo_chunks(lambda: iter(chunks), counts, n_large)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert traced == res  # the sample is seeded: every run uses the same splits
    m = res["n_splits_used"] // 2
    how = (f"{res['n_splits_used']:,} of {res['n_combinations_total']:,} splits sampled, standard error "
           f"<= 0.5/sqrt({m}) = {0.5 / math.sqrt(m):.3f}" if res["splits_sampled"] else
           f"all {res['n_splits_used']:,} splits")
    report(f"PBO, {n_large:,} configs in {n_chunks} chunks of {CHUNK:,}, {how} (budget {MAX_PAIRS:.0e} pairs; "
           f"{statistics.median(cpu):.1f} s of CPU)", f"{statistics.median(times):.1f} s", "<= 10 s")
    report(f"  memory allocated by that PBO at its peak (one {CHUNK:,}-row chunk and the splits)",
           f"{peak / 2 ** 20:.1f} MB", "O(splits + one chunk)")
    report("  (generating those chunks, not timed above)", f"{gen:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    def report(what: str, value: str, target: str = "") -> None:
        print(f"{what:<110} {value:>10}  {target}")

    bench_pbo(report, args.configs, args.repeat)


if __name__ == "__main__":
    main()
