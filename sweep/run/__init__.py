"""The run skeleton every kind shares: a thread pool (or a Dask cluster, ``cluster``) over
chunks of work, progress on stderr, each finished chunk on disk before it counts, and resume
from the chunks found there."""

from sweep.run.progress import Progress

__all__ = ["Progress"]
