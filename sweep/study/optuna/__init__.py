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
(``sqlite:///``, ``postgresql+psycopg://user@host/db``, ``mysql://``), which
makes the same command, on this machine or any other, a worker of a shared
study. ``postgresql://`` without a driver means psycopg 3 where psycopg2 is
not installed (SQLAlchemy would ask for psycopg2). A database is connected
before the results folder is touched: one that does not answer is one line
and nothing written. Processes that start together on a fresh database all
get the one study (the loser of the race to create Optuna's tables or the
study retries and finds the winner's).

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
end, at most once per worker. Two workers labelling at once can each ask the
other's label (``sweep.study.optuna.trials``), so a label can be left waiting:
a later ask takes it, and a worker that stops asking retires its own the same
way (``sweep_surplus``, FAIL), so a study never ends with a waiting trial. A trial left running by a dead worker is
marked ``sweep_abandoned`` and FAIL by the next run that looks, stops
counting, and a replay of it takes its place. Neither kind is in the
table, so its ``trial_number`` has a gap there. Ctrl-C (or any error) first
finishes the trials already asked, which takes milliseconds, so an
interrupted run leaves none running.

Dead workers. A running trial is its worker's until that worker is known
dead: on the same machine, once its process is gone (checked at once); on
another machine with a database storage, once its Optuna heartbeat is older
than ``[optuna] grace_period`` (default 30 s) by the database's clock. Each
worker writes the heartbeat of its running trials every
``heartbeat_interval`` seconds (default 10) from a thread of its own
(``storage.Heartbeat``: Optuna beats only inside ``study.optimize``, and
sweep asks and tells), so a trial that runs for hours is never taken for
dead while its worker lives, and a worker killed, frozen or cut off from the
database loses its trials ``grace_period`` seconds after its last beat. A
journal file has no heartbeat in Optuna: there another machine's trial is
dead once its label is older than ``STALE_AFTER`` (600 s).

Who retries a dead trial: sweep's replay, never Optuna's
``RetryFailedTrialCallback`` (the storage has no stale-trial callback, and
``fail_stale_trials`` is not called: sweep reads the same verdict,
``_get_stale_trial_ids``, and fails the trials itself in ``trials.reap``).
The callback would FAIL the trial before enqueueing its retry, so a run
killed between the two loses the retry, and a trial killed between its
metrics and its tell would count, for a moment, beside its retry; it copies
the dead worker's label into a waiting trial sweep takes for a label; it
retries a trial that drew only some of its parameters; and its retry joins
the queue behind whatever is waiting. The replay is enqueued before the
dead trial is marked abandoned (a kill in between leaves the trial to the
next run, which sees the replay and does not replay it again), is asked
before any new trial, in the dead trials' order, and only for a trial that
drew every parameter: each dead trial is retried exactly once.

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
