"""What a Dask worker does before it runs sweep's chunks (imported only where Dask is)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin

# Environment of a worker process: one thread each for Numba, OpenMP and Polars (Dask runs one
# task per worker thread; the kernels' own threads would oversubscribe the cores).
WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1",
              "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _cache_files(root: Path) -> list[Path]:
    return [p for p in root.glob("*") if p.suffix in (".nbi", ".nbc")] if root.is_dir() else []


PREFIX = "sweep-numba-"  # + the worker's pid: a folder whose process is gone is an orphan


def _remove_orphans() -> None:
    """Remove the cache folders of workers that died without their teardown (kill -9)."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        pid = folder.name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and Path("/proc/self").exists():
            shutil.rmtree(folder, ignore_errors=True)


class SweepWorker(WorkerPlugin):
    """Dask worker plugin: one thread per library and a Numba cache of the worker's own.

    ``setup`` runs in each worker process before its first task (``Client.register_plugin``),
    also in workers that start later. It must run before Numba or Polars is imported there,
    which holds: a worker imports them when it unpickles its first chunk's state.
    """

    name = "sweep-worker"
    idempotent = True

    def setup(self, worker: Any = None) -> None:
        shared = os.environ.get("NUMBA_CACHE_DIR")
        os.environ.update(WORKER_ENV)
        _remove_orphans()
        self.cache = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        os.environ["NUMBA_CACHE_DIR"] = self.cache
        if "numba" in sys.modules:
            import numba

            numba.config.reload_config()
        spec = find_spec("kernels")
        if spec is None or not spec.submodule_search_locations:
            return
        # Seed this worker's cache with the machine's: the kernels load instead of compiling.
        # Numba writes cache files to a temporary name and renames it, so a copy is never torn.
        from numba.core.caching import UserProvidedCacheLocator

        kernels = Path(list(spec.submodule_search_locations)[0])
        sub = UserProvidedCacheLocator.get_suitable_cache_subpath(str(kernels / "__init__.py"))
        source = Path(shared) / sub if shared else kernels / "__pycache__"
        target = Path(self.cache) / sub
        target.mkdir(parents=True, exist_ok=True)
        for f in _cache_files(source):
            try:
                shutil.copy2(f, target / f.name)
            except OSError:
                pass  # a file another process is replacing: compiled here instead

    def teardown(self, worker: Any = None) -> None:
        shutil.rmtree(getattr(self, "cache", ""), ignore_errors=True)



__all__ = ["PREFIX", "WORKER_ENV", "SweepWorker"]
