"""Optuna's samplers, seeded per trial: a trial's draw depends on its index and its history, never
on the process, the thread or how many trials came before it in this run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def trial_seed(seed: int | None, index: int) -> int | None:
    """The seed of the sampler of trial ``index`` (None: unseeded)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def make_sampler(name: str, seed: int | None, index: int):
    """A fresh Optuna sampler ``name`` seeded from ``(seed, index)`` (unseeded when ``seed`` is None)."""
    import optuna.samplers as S

    s = trial_seed(seed, index)
    if name == "tpe":
        # Constant liar: trials in flight count as bad, so parallel trials spread out.
        return S.TPESampler(seed=s, constant_liar=True)
    if name == "random":
        return S.RandomSampler(seed=s)
    if name == "cmaes":
        return S.CmaEsSampler(seed=s, warn_independent_sampling=False)
    if name == "gp":
        return S.GPSampler(seed=s, warn_independent_sampling=False)
    # QMC draws point k of one sequence: its scrambling seed is the study's, not the trial's.
    return S.QMCSampler(seed=seed, independent_sampler=S.RandomSampler(seed=s),
                        warn_independent_sampling=False, warn_asynchronous_seeding=False)


_SAMPLER_CLASS = None


def per_trial_sampler(name: str, seed: int | None, index_of: Callable[[Any, int], int]):
    """A sampler that builds a fresh inner sampler per trial, seeded from the trial's admitted index.

    Optuna's samplers keep their history in the storage, not in the object,
    so a fresh one per trial samples as a long-lived one would, while its seed
    depends on the trial instead of on how many trials this process asked.
    ``index_of(study, number)`` is the admitted index of trial ``number`` (what
    also decides admission), so it is kept per trial number in ``.index``.
    """
    global _SAMPLER_CLASS
    if _SAMPLER_CLASS is None:
        # Defined on first use: importing Optuna is slow, and only a run needs it.
        from optuna.samplers import BaseSampler

        class PerTrialSampler(BaseSampler):
            def __init__(self, name, seed, index_of):
                self.name, self.seed, self.index_of = name, seed, index_of
                self.inner: dict[int, Any] = {}
                self.index: dict[int, int] = {}

            def before_trial(self, study, trial):
                k = trial.number
                self.index[k] = self.index_of(study, k)
                self.inner[k] = make_sampler(self.name, self.seed, self.index[k])
                self.inner[k].before_trial(study, trial)

            def infer_relative_search_space(self, study, trial):
                return self.inner[trial.number].infer_relative_search_space(study, trial)

            def sample_relative(self, study, trial, search_space):
                return self.inner[trial.number].sample_relative(study, trial, search_space)

            def sample_independent(self, study, trial, param_name, param_distribution):
                return self.inner[trial.number].sample_independent(study, trial, param_name, param_distribution)

            def after_trial(self, study, trial, state, values):
                inner = self.inner.pop(trial.number, None)
                self.index.pop(trial.number, None)
                if inner is not None:
                    inner.after_trial(study, trial, state, values)

            def forget(self, number):
                self.inner.pop(number, None)
                self.index.pop(number, None)

            def reseed_rng(self):
                pass  # seeds come from the trial index, never from the process

        _SAMPLER_CLASS = PerTrialSampler
    return _SAMPLER_CLASS(name, seed, index_of)
