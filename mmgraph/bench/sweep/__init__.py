"""Hyperparameter sweeps: an Optuna study over a search space of ``configs/sweep/``, then a re-run
of the best configuration over many seeds, which alone produces test numbers.

``python -m mmgraph.bench sweep=gat model=gat dataset=openclipart sweep.workers=2``:

1. The study lives in ``sweep.storage`` (any SQLAlchemy URL; by default the SQLite file
   ``study.db`` in the sweep folder ``sweeps/<dataset>/<model>/<sweep>[-<modalities>][-<fusion>]``).
   Running the same command again, here or on another machine with the same storage, joins or
   resumes the study: completed trials are kept and never run twice.
2. ``sweep.workers`` processes (each loads the data once, with ``cores / workers`` threads) take
   trials until ``sweep.trials`` trials have finished (completed or pruned). A trial trains the
   configuration Optuna suggests for ``sweep.trial_seeds`` seeds and returns the mean
   *validation* value of the task's primary metric; the best-so-far validation value after each
   evaluation goes to the pruner, which may stop the trial early. Test values are never stored
   with a trial.
3. A trial whose process died is marked failed, not left running: at once when the process ran
   on this host (its pid is gone), otherwise when its heartbeat is older than
   ``sweep.grace_period`` seconds. Failed trials do not count towards ``sweep.trials``.
4. The best trial's configuration is re-run over ``sweep.final_seeds`` seeds into ``final/`` of
   the sweep folder (seeds already stored there by the same configuration are kept), and its
   summary, with the sweep recorded in it, is the row of the results table.

``study.json`` in the sweep folder describes the study for ``python -m mmgraph.report``. The
storage URL is used as given; wherever it is stored or printed its password is masked.

Files by role:

- :mod:`~mmgraph.bench.sweep.settings`: the ``sweep`` config group checked, and the identity of a study;
- :mod:`~mmgraph.bench.sweep.space`: the search space of a ``configs/sweep/`` config;
- :mod:`~mmgraph.bench.sweep.objective`: the sampler and pruner, one trial's training;
- :mod:`~mmgraph.bench.sweep.storage`: the study in its database, joining it, failing dead trials;
- :mod:`~mmgraph.bench.sweep.workers`: the processes that take trials until the study is done;
- :mod:`~mmgraph.bench.sweep.rerun`: the whole command, ending with the best configuration's
  re-run and ``study.json``.
"""
from mmgraph.bench.sweep.objective import Objective
from mmgraph.bench.sweep.rerun import describe, final_config, run_sweep, sweep_table
from mmgraph.bench.sweep.settings import Settings, identity, settings_of
from mmgraph.bench.sweep.space import Param, apply_params, parse_space
from mmgraph.bench.sweep.storage import counts, fail_dead_trials, finished, open_storage, open_study
from mmgraph.bench.sweep.workers import work

__all__ = ["Objective", "Param", "Settings", "apply_params", "counts", "describe", "fail_dead_trials",
           "final_config", "finished", "identity", "open_storage", "open_study", "parse_space", "run_sweep",
           "settings_of", "sweep_table", "work"]
