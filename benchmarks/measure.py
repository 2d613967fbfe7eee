"""Wall time and peak memory of one fresh `sweep` process.

The peak is the child's own ``VmHWM`` (the high-water mark of its resident memory, from
``/proc/self/status``), printed by the child as it exits. Not ``ru_maxrss``: Linux carries a
process's maximum across ``exec``, so a child forked from a benchmark that had itself grown to
2.5 GB reported 2.5 GB whatever it ran.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """\
import resource, sys
from sweep.cli.main import main
rc = main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; only where /proc is missing
try:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(peak, file=sys.stderr)
sys.exit(rc)
"""


def run_peak(args: list[str]) -> tuple[float, int]:
    """``(wall seconds, peak resident bytes)`` of ``sweep ARGS`` in a fresh process."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args)} failed: {proc.stderr.strip()}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) * 1024


def replace_readme_block(tag: str, block: str) -> None:
    """Put ``block`` (which starts with ``<!-- TAG:start -->`` and ends with ``<!-- TAG:end -->``)
    in README.md in place of the old one, atomically (temporary file, then rename)."""
    import os
    import re

    readme = ROOT / "README.md"
    text, n = re.subn(rf"<!-- {tag}:start -->.*?<!-- {tag}:end -->", lambda _: block, readme.read_text(),
                      flags=re.DOTALL)
    if n != 1:
        raise SystemExit(f"README.md has no <!-- {tag}:start --> ... <!-- {tag}:end --> block")
    tmp = readme.with_name(".README.md.tmp")
    tmp.write_text(text)
    os.replace(tmp, readme)
    print(f"wrote the figures into {readme}")
