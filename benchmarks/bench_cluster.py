"""What scaling out costs: per task, and end to end on the benchmark's rebalance sweep.

    python benchmarks/bench_cluster.py                 # print the figures
    python benchmarks/bench_cluster.py --write-readme  # also replace the README's cluster table

1. Per-task cost on ``local:2`` (two worker processes, one thread each): a task that does nothing
   but read a scattered 10 MB array, sent (a) through joblib's Dask backend as ``sweep.run.cluster``
   does and (b) through Dask's futures used directly (``submit`` + ``as_completed``, the same
   number in flight); and the same task on the local thread pool (``sweep.run.pool``).
2. The 3,840-configuration sweep of ``bench_sweep.py`` on the embedded data, three ways: this
   machine's threads (``--jobs 2``), ``--cluster local:2`` and ``--cluster tcp://...`` (a ``dask
   scheduler`` with two ``dask worker`` processes this script starts on 127.0.0.1). The tables
   are checked identical first; then each is timed as a whole fresh process (median of
   ``--repeat``), the cluster's start-up included.
3. The cost of an Optuna trial on each storage: ``studies/volatility_optuna.toml`` (200 TPE
   trials, ``--jobs 1``) on the journal file and on a throwaway PostgreSQL server with its
   default settings (tests/pgserver.py, fsync on); the search's own time per trial
   (``compute_time_s / configurations`` of ``manifest.json``), start-up excluded. Both
   storages' tables are checked to hold the same trials first (a seeded search, one process).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from bench_sweep import machine, sweep_study  # noqa: E402
from daskserver import DaskServer  # noqa: E402
from pgserver import Server as PostgresServer  # noqa: E402
from measure import replace_readme_block, run_peak  # noqa: E402

N_TASKS = 400


def _noop(state: np.ndarray, i: int) -> tuple[int, float]:
    return i, float(state[i % state.size])


class Noop:
    """The per-task probe as sweep's cluster path runs it: a picklable callable over a scattered state."""

    def __init__(self, state: np.ndarray):
        self.state = state

    def __call__(self, i: int) -> float:
        return float(self.state[i % self.state.size])


def per_task_joblib(cluster, state: np.ndarray) -> float:
    t = time.perf_counter()
    n = sum(1 for _ in cluster.map(Noop(state), range(N_TASKS)))
    assert n == N_TASKS
    return (time.perf_counter() - t) / N_TASKS


def per_task_futures(cluster, state: np.ndarray) -> float:
    from distributed import as_completed

    client = cluster.client
    t = time.perf_counter()
    fut = client.scatter(state, broadcast=True, hash=False)
    in_flight = 2 * max(1, cluster.workers())
    items = iter(range(N_TASKS))
    pending = as_completed([client.submit(_noop, fut, next(items), pure=False) for _ in range(in_flight)],
                           loop=client.loop)
    n = 0
    for f in pending:
        f.result()
        n += 1
        i = next(items, None)
        if i is not None:
            pending.add(client.submit(_noop, fut, i, pure=False))
    assert n == N_TASKS
    return (time.perf_counter() - t) / N_TASKS


def per_task_threads(state: np.ndarray) -> float:
    from sweep.run.pool import run_chunks

    return run_chunks(range(N_TASKS), Noop(state), lambda c, r: 1, jobs=2, total=N_TASKS,
                      progress=False) / N_TASKS


def per_task(repeat: int, tcp: str) -> dict[str, float]:
    from sweep.run.cluster import Cluster

    state = np.random.default_rng(0).random(10_000_000 // 8)
    out: dict[str, list[float]] = {"joblib": [], "futures": [], "threads": [], "tcp": []}
    with Cluster("local:2") as cluster:
        per_task_joblib(cluster, state)  # warm: workers import, scatter once
        for _ in range(repeat):
            out["joblib"].append(per_task_joblib(cluster, state))
            out["futures"].append(per_task_futures(cluster, state))
    with Cluster(tcp) as cluster:
        per_task_joblib(cluster, state)
        for _ in range(repeat):
            out["tcp"].append(per_task_joblib(cluster, state))
    for _ in range(repeat):
        out["threads"].append(per_task_threads(state))
    return {k: statistics.median(v) for k, v in out.items()}


def end_to_end(repeat: int, tmp: Path, server: DaskServer) -> list[tuple[str, float, int]]:
    data = ROOT / "data" / "crypto_daily.parquet"
    study = tmp / "study.toml"
    study.write_text(sweep_study(data, "cluster-bench"))
    ways = [("threads, `--jobs 2`", ["--jobs", "2"]), ("`--cluster local:2`", ["--cluster", "local:2"]),
            ("`--cluster tcp://...` (scheduler + 2 workers)", ["--cluster", server.address])]
    tables = []
    for label, extra in ways:  # agreement first: every way writes the same table
        out = tmp / re.sub(r"\W+", "-", label)
        run_peak(["run", str(study), "--out", str(out), "--quiet", "--force", *extra])
        tables.append(pl.read_parquet(out / "trials.parquet"))
    for t in tables[1:]:
        if not t.equals(tables[0]):
            raise SystemExit("a cluster run's table differs from the local run's")
    n = tables[0].height
    print(f"tables identical on {n:,} configurations, three ways")
    rows = []
    for label, extra in ways:
        out = tmp / re.sub(r"\W+", "-", label)
        walls = [run_peak(["run", str(study), "--out", str(out), "--quiet", "--force", *extra])[0]
                 for _ in range(repeat)]
        rows.append((label, statistics.median(walls), n))
        print(f"{label}: {rows[-1][1]:.2f} s", flush=True)
    return rows


def server_version() -> str:
    import subprocess

    from pgserver import bindir

    out = subprocess.run([str(bindir() / "postgres"), "--version"], capture_output=True, text=True)
    found = re.search(r"\d+(\.\d+)+", out.stdout) if out.returncode == 0 else None
    return found.group(0) if found else ""


def per_trial(repeat: int, tmp: Path) -> dict[str, float]:
    """Seconds per Optuna trial, median of ``repeat`` runs, on the journal and on PostgreSQL."""
    import json

    base = (ROOT / "studies" / "volatility_optuna.toml").read_text().replace(
        'data = "data/', f'data = "{ROOT}/data/')
    server = PostgresServer(fast=False)
    server.start()
    try:
        out: dict[str, list[float]] = {"journal": [], "postgresql": []}
        tables = {}
        for i in range(repeat):
            for storage in out:
                text = base + (f'storage = "{server.create_database()}"\n' if storage == "postgresql" else "")
                study = tmp / f"optuna-{storage}-{i}.toml"
                study.write_text(text)
                folder = tmp / study.stem
                run_peak(["run", str(study), "--out", str(folder), "--quiet", "--jobs", "1", "--force"])
                m = json.loads((folder / "manifest.json").read_text())
                out[storage].append(m["compute_time_s"] / m["configurations"])
                tables[storage] = pl.read_parquet(folder / "trials.parquet").drop("schema_version")
        cols = ["trial_number", "config_id", "sharpe"]
        if not tables["journal"].select(cols).equals(tables["postgresql"].select(cols)):
            raise SystemExit("the seeded search's trials differ between the journal and PostgreSQL")
        print(f"the same {tables['journal'].height} trials on both storages")
        return {k: statistics.median(v) for k, v in out.items()}
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = DaskServer(Path(tmp))
        try:
            costs = per_task(args.repeat, server.address)
            for k, v in costs.items():
                print(f"per task, {k}: {1e3 * v:.2f} ms", flush=True)
            rows = end_to_end(args.repeat, Path(tmp), server)
        finally:
            server.stop()
        trial = per_trial(args.repeat, Path(tmp))
        for k, v in trial.items():
            print(f"per Optuna trial, {k}: {1e3 * v:.1f} ms", flush=True)
    lines = ["| way | per task | 3,840-configuration sweep, whole process | configurations/s |",
             "| --- | ---: | ---: | ---: |"]
    per = [costs["threads"], costs["joblib"], costs["tcp"]]
    for (label, wall, n), c in zip(rows, per):
        lines.append(f"| {label} | {1e3 * c:.2f} ms | {wall:.2f} s | {n / wall:,.0f} |")
    lines.append(f"| (Dask's futures used directly, `local:2`) | {1e3 * costs['futures']:.2f} ms | | |")
    lines += ["", "| Optuna storage (`studies/volatility_optuna.toml`, 200 TPE trials, `--jobs 1`) | per trial |",
              "| --- | ---: |",
              f"| journal file (the default) | {1e3 * trial['journal']:.1f} ms |",
              f"| PostgreSQL {server_version()} on 127.0.0.1, default settings | {1e3 * trial['postgresql']:.1f} ms |"]
    block = ("<!-- cluster:start -->\n"
             f"Measured by `python benchmarks/bench_cluster.py --write-readme` on {machine()}, "
             f"medians of {args.repeat}; a task is an empty chunk sent to a worker and its result back "
             "(on a cluster through joblib's Dask backend, as `sweep run --cluster` sends them); the sweep's "
             "whole process includes starting (`local:N`) or reaching (`tcp://`) the cluster:\n\n"
             + "\n".join(lines) + "\n<!-- cluster:end -->")
    print(block)
    if args.write_readme:
        replace_readme_block("cluster", block)


if __name__ == "__main__":
    main()
