"""Progress of a run on stderr, shared by every kind that runs chunks of backtests."""

from __future__ import annotations

import sys
import time
from typing import Callable


class Progress:
    """Progress on stderr: a rich bar on a terminal; elsewhere (a pipe, a CI log) one line
    each time the work passes another tenth, so a log gets at most ten; nothing when
    ``enabled`` is false."""

    def __init__(self, total: int, done: int, enabled: bool, workers: Callable[[], int] | None = None):
        self.bar = None
        # On a cluster, the workers connected now (asked at most once a second: a scheduler call).
        self.workers = workers
        self.n_workers, self.asked = 0, float("-inf")
        self.tenth = None  # pipe mode: the last tenth of ``total`` reported
        self.total = total
        self.t0 = time.perf_counter()
        self.done0 = done
        if enabled and total > done and not sys.stderr.isatty():
            self.tenth = 10 * done // total
        elif enabled and total > done:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar(TextColumn("[bold]running"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                           transient=True, console=Console(stderr=True))
            self.task = self.bar.add_task("run", total=total, completed=done, rate="")
            self.bar.start()

    def advance(self, k: int, done: int) -> None:
        now = time.perf_counter()
        rate = (done - self.done0) / max(now - self.t0, 1e-9)
        where = ""
        if self.workers is not None and (self.bar is not None or self.tenth is not None):
            if now - self.asked >= 1.0:
                self.n_workers, self.asked = self.workers(), now
            where = f" on {self.n_workers} worker{'s' if self.n_workers != 1 else ''}"
        if self.bar is not None:
            self.bar.update(self.task, advance=k, rate=f"{rate:,.0f} configs/s{where}")
        elif self.tenth is not None and 10 * done // self.total > self.tenth:
            self.tenth = 10 * done // self.total
            print(f"running: {100 * done // self.total} % ({done:,} of {self.total:,}, {rate:,.0f}/s{where}, "
                  f"{now - self.t0:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
