r"""Simulated missing modalities for cohorts (:mod:`mmgraph.data.cohort`), seeded.

:func:`simulate_missing` removes, per chosen modality, a share ``rate`` of the patients that have
it, under one of three mechanisms:

- ``mcar`` (missing completely at random): every patient equally likely;
- ``mnar_outcome`` (missing not at random, through the outcome): the weight of patient ``i`` is
  :math:`\exp(s\,z_i)` with :math:`z_i` the standardised outcome score (survival: an event
  before the median time scores highest, then any event, then censoring; classification: the
  class index), so with ``strength`` :math:`s > 0` patients with worse outcomes lose the
  modality more often;
- ``mnar_covariate``: :math:`z_i` is a standardised covariate (``covariate="<modality>.<column>"``,
  e.g. ``clinical.age``), missing more often for high values when :math:`s > 0`.

Exactly ``round(rate * n_m)`` of the ``n_m`` patients that have modality ``m`` lose it, drawn
without replacement with probabilities proportional to the weights (a seeded NumPy generator per
modality). A patient never loses its last modality: such a draw is put back and the next one
taken (counted in the returned statistics). Which patients the simulation touches (training,
test or both) is the task's choice (:class:`mmgraph.tasks.GraphPrediction`'s ``missing.where``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from mmgraph.errors import ConfigError

MECHANISMS = ("mcar", "mnar_outcome", "mnar_covariate")


def outcome_score(time: Tensor | None = None, event: Tensor | None = None,
                  y: Tensor | None = None) -> np.ndarray:
    """A per-patient score that is higher for worse outcomes (survival: 2 for an event before the
    median time, 1 for a later event, 0 for censoring; classification: the class index)."""
    if y is not None:
        return y.double().numpy()
    if time is None or event is None:
        raise ConfigError("mnar_outcome needs survival times and events or class labels")
    t, e = time.double().numpy(), event.bool().numpy()
    return e.astype(float) + (e & (t <= np.median(t))).astype(float)


def _standardise(z: np.ndarray) -> np.ndarray:
    sd = z.std()
    return (z - z.mean()) / sd if sd > 0 else np.zeros_like(z)


def simulate_missing(present: Mapping[str, Tensor], rate: float, mechanism: str = "mcar",
                     modalities: Sequence[str] | None = None, seed: int = 0, strength: float = 2.0,
                     score: np.ndarray | None = None) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """New presence masks with simulated missingness, and what was done.

    Args:
        present: modality -> ``bool [P]`` (the cohort's masks; natural missingness is kept).
        rate: share of the patients having a modality that lose it, in ``[0, 1)``.
        mechanism: one of :data:`MECHANISMS`.
        modalities: the modalities that can go missing (default: all).
        seed: seeds the draw (one generator per modality, from ``(seed, modality position)``).
        strength: the MNAR mechanisms' :math:`s`.
        score: ``[P]`` outcome or covariate score (required by the MNAR mechanisms).

    Returns:
        ``(masks, stats)``: stats has ``removed`` per modality and ``kept_last`` (draws put back
        because the patient would have lost its last modality).
    """
    if not 0.0 <= float(rate) < 1.0:
        raise ConfigError(f"missing.rate must be in [0, 1); got {rate}")
    if mechanism not in MECHANISMS:
        raise ConfigError(f"missing.mechanism must be one of {', '.join(MECHANISMS)}; got {mechanism!r}")
    names = list(present)
    mods = list(modalities) if modalities is not None else names
    unknown = [m for m in mods if m not in names]
    if unknown:
        raise ConfigError(f"missing.modalities: no modality {unknown[0]!r}; the cohort has "
                          f"{', '.join(names)}")
    out = {m: present[m].clone().bool() for m in names}
    n = next(iter(out.values())).numel() if out else 0
    if mechanism != "mcar":
        if score is None or len(score) != n:
            raise ConfigError(f"{mechanism} needs a score per patient")
        # clipped exponent: no weight underflows to 0 or overflows, whatever the strength
        weights = np.exp(np.clip(float(strength) * _standardise(np.asarray(score, dtype=float)), -30.0, 30.0))
    else:
        weights = np.ones(n)
    stats: dict[str, Any] = {"removed": {}, "kept_last": 0}
    for pos, m in enumerate(names):
        if m not in mods or rate == 0.0:
            stats["removed"][m] = 0
            continue
        have = np.flatnonzero(out[m].numpy())
        target = int(round(float(rate) * have.size))
        rng = np.random.default_rng([int(seed), pos])
        p = weights[have] / weights[have].sum()
        order = have[rng.choice(have.size, size=have.size, replace=False, p=p)] if have.size else have
        removed = 0
        for i in order:  # in the drawn order; a patient's last modality is put back
            if removed == target:
                break
            if sum(bool(out[o][i]) for o in names) <= 1:
                stats["kept_last"] += 1
                continue
            out[m][i] = False
            removed += 1
        stats["removed"][m] = removed
    return out, stats
