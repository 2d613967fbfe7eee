"""Optuna studies (``kind = "optuna"``): search a ``[space]`` of parameters instead of a grid.

Conventions. A trial is one configuration, ``{**[backtest], **suggested}``,
evaluated over the evaluation window the whole study shares (SEMANTICS §7:
``W`` is the largest window any trial can read, found from the space before
any trial runs). The objective is maximised, except ``ann_vol``,
``turnover`` and ``cost_paid``, which are minimised. A NaN objective is told
to Optuna as a failed trial (it is not a number a sampler can rank) and is
still a row of the table; so is a ruined book (SEMANTICS §8), whose ratios
describe a closed book, and which is never the reported best.

The Optuna storage is the source of truth. Every trial keeps its metrics as
the user attribute ``sweep_metrics``, so ``trials.parquet`` is rebuilt from
the storage alone at the end of every run, trials of other processes
included. The default storage is the journal file ``<out>/optuna.journal``;
``[optuna] storage`` may name another journal file or a database URL
(``sqlite:///``, ``postgresql://``, ``mysql://``), which makes the same
command a worker of a shared study.

Which trials count. A trial counts towards ``n_trials`` when it finished
with metrics, or while it runs (a worker is on it), unless it was abandoned. Trial ``k`` is
*admitted* when fewer than ``n_trials`` trials numbered below ``k`` count.
Optuna numbers trials densely and atomically in every storage, so however
many processes share a study, the admitted trials are the first
``n_trials`` that count, and a run returns only once exactly ``n_trials``
have finished with metrics and none is running (it waits for other
workers' trials, and takes over from any that died). A worker that draws a
trial past the limit marks it ``sweep_surplus`` and tells it FAIL without
sampling it: it happens only when workers ask at the same moment near the
end, at most once per worker. A trial left running by a dead worker (on
this host its process is gone; on another host its label is older than
``STALE_AFTER``) is marked ``sweep_abandoned`` and FAIL by the next run
that looks, stops counting, and a replay of it takes its place. Neither
kind is in the table, so its ``trial_number`` has a gap there. Ctrl-C (or
any error) first finishes the trials already asked, which takes
milliseconds, so an interrupted run leaves none running.

``--force`` deletes the journal and the tables in the results folder, and
with a storage named in ``[optuna]``, the Optuna study of that name in it
(every worker's trials).

Reproducibility. Trials are asked in a fixed pipeline: trial ``k`` is asked
right after trial ``k - IN_FLIGHT`` is told, and each trial's sampler is
seeded from ``(seed, k's admitted index)``. Every trial of a single process
therefore sees the same history whatever ``--jobs``, and a seeded study
gives the same table for any ``--jobs``. A process killed (kill -9) leaves
up to ``IN_FLIGHT`` trials running; the next run abandons them and, before
asking anything new, replays each one that had drawn its parameters: a
trial with the same parameters, asked in the same order (so its number is
new, and the dead one is a gap in the table). The replays stand where the
dead trials stood in the pipeline, so every later trial sees the history
it sees in an uninterrupted run, and a seeded study resumed after a kill
writes the uninterrupted table, row for row in trial order. Workers
sharing a study see each other's trials as they come, so a shared study is
not reproducible; the per-index seeds still keep two workers with the same
seed from drawing the same parameters.

Layout: ``space`` (the study file's tables), ``samplers``, ``storage``,
``trials`` (which trials count, dead workers, replays), ``search`` (the
ask/tell loop), ``tables`` (what is written) and ``runner`` (``prepare``,
``run``).
"""

from sweep.study.optuna.runner import STATE, Prepared, describe, prepare, run
from sweep.study.optuna.samplers import make_sampler
from sweep.study.optuna.search import IN_FLIGHT
from sweep.study.optuna.space import (
                                      SAMPLERS,
                                      Dim,
                                      Options,
                                      Search,
                                      corners,
                                      parse_options,
                                      parse_search,
                                      parse_space,
                                      validate,
)
from sweep.study.optuna.storage import JOURNAL
from sweep.study.optuna.tables import TABLES, table

__all__ = ["IN_FLIGHT", "JOURNAL", "SAMPLERS", "STATE", "TABLES", "Dim", "Options", "Prepared", "Search",
           "corners", "describe", "make_sampler", "parse_options", "parse_search", "parse_space", "prepare",
           "run", "table", "validate"]
