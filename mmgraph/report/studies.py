"""Sweeps: read a ``study.json``, open its Optuna study, draw its history and parameter importances.

``study.json`` (written next to a sweep's outputs)::

    {"study_name": ..., "storage": "sqlite:///study.db", "direction": "maximize",
     "metric": "val/acc", "dataset": ..., "model": ..., "sweep": ..., "n_trials": 20,
     "best": {"number": 7, "value": 0.83, "params": {...}},
     "states": {"COMPLETE": 18, "PRUNED": 2, "FAIL": 1}, "final": "final"}

``storage`` is any SQLAlchemy URL; a relative ``sqlite:///`` path is relative to the folder of
``study.json``. Importances use PED-ANOVA (:class:`optuna.importance.PedAnovaImportanceEvaluator`),
which needs only NumPy/SciPy; optuna's default fANOVA evaluator needs scikit-learn.
"""
from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from mmgraph.errors import first_line
from mmgraph.report.collect import Study
from mmgraph.report.figures import new_figure, safe_name, save

# Fewer complete trials than this and an importance figure says nothing: it is skipped.
MIN_TRIALS_FOR_IMPORTANCE = 5
IMPORTANCE_METHOD = "PED-ANOVA"


class StudyUnavailable(Exception):
    pass


def storage_url(info: dict[str, Any], folder: Path) -> str:
    """The study's storage URL with a relative SQLite path made relative to ``folder``."""
    url = str(info["storage"])
    prefix = "sqlite:///"
    if url.startswith(prefix):
        path = url[len(prefix):]
        if path and path != ":memory:" and not Path(path).is_absolute():
            return prefix + str((folder / path).resolve())
    return url


@contextmanager
def _quiet():
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


def open_study(study: Study):
    """The :class:`optuna.Study` a ``study.json`` names; :class:`StudyUnavailable` if it cannot be opened."""
    try:
        import optuna
    except ImportError as exc:
        raise StudyUnavailable("optuna is not installed") from exc
    url = storage_url(study.info, study.path.parent)
    if url.startswith("sqlite:///"):
        db = url[len("sqlite:///"):]
        if db != ":memory:" and not Path(db).is_file():  # optuna would create an empty database
            raise StudyUnavailable(f"storage {db} does not exist")
    try:
        with _quiet():
            return optuna.load_study(study_name=str(study.info["study_name"]), storage=url)
    except Exception as exc:  # KeyError for an unknown name, SQLAlchemy errors, ...
        msg = first_line(exc)
        raise StudyUnavailable(f"cannot open study {study.info['study_name']!r} in {url}: {msg}") from exc


def _last_intermediate(trial) -> float | None:
    if not trial.intermediate_values:
        return None
    return trial.intermediate_values[max(trial.intermediate_values)]


def history_figure(ostudy, info: dict[str, Any], path: Path) -> Path:
    """Objective per trial with the best-so-far line; pruned trials at their last reported value,
    failed trials marked on the axis; a second panel with the values trials reported while
    running (when any did)."""
    from optuna.trial import TrialState

    trials = sorted(ostudy.get_trials(deepcopy=False), key=lambda t: t.number)
    maximize = ostudy.direction.name == "MAXIMIZE"
    metric = str(info.get("metric") or "objective")
    reported = any(t.intermediate_values for t in trials)
    fig, axes = new_figure(11 if reported else 6.5, 4.2, ncols=2 if reported else 1)
    ax = axes[0]
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    pruned = [(t, _last_intermediate(t)) for t in trials if t.state == TrialState.PRUNED]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    if done:
        ax.scatter([t.number for t in done], [t.value for t in done], s=22, color="tab:blue", zorder=3,
                   label=f"complete ({len(done)})")
        best, xs, ys = None, [], []
        for t in done:
            if best is None or (t.value > best if maximize else t.value < best):
                best = t.value
            xs.append(t.number)
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:red", lw=1.5, label="best so far")
    shown_pruned = [(t, v) for t, v in pruned if v is not None]
    if pruned:
        ax.scatter([t.number for t, _ in shown_pruned], [v for _, v in shown_pruned], marker="x", s=30,
                   color="tab:gray", zorder=3, label=f"pruned ({len(pruned)}; last reported value)")
    if failed:
        ax.scatter([t.number for t in failed], [0.0] * len(failed), marker="v", s=40, color="black",
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=4,
                   label=f"failed ({len(failed)}; no value)")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.set_title(f"{ostudy.study_name}: {metric} per trial ({'maximize' if maximize else 'minimize'})",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if maximize else "upper right")
    if reported:
        ax2 = axes[1]
        best_number = None
        if done:
            best_number = (max if maximize else min)(done, key=lambda t: t.value).number
        for t in trials:
            if not t.intermediate_values:
                continue
            steps = sorted(t.intermediate_values)
            vals = [t.intermediate_values[s] for s in steps]
            if t.state == TrialState.PRUNED:
                ax2.plot(steps, vals, color="tab:gray", lw=0.8, alpha=0.8)
                ax2.plot(steps[-1:], vals[-1:], marker="x", color="tab:gray", ms=6)
            elif t.number == best_number:
                ax2.plot(steps, vals, color="tab:red", lw=1.8, zorder=3, label=f"best trial ({t.number})")
            else:
                ax2.plot(steps, vals, color="tab:blue", lw=0.8, alpha=0.6)
        ax2.plot([], [], color="tab:blue", lw=0.8, label="complete")
        ax2.plot([], [], color="tab:gray", lw=0.8, marker="x", label="pruned (× where stopped)")
        ax2.set_xlabel("step (epoch) reported")
        ax2.set_ylabel(f"reported {metric}")
        ax2.set_title("values reported during the trials", fontsize=10)
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=7)
    return save(fig, path)


def importances(ostudy) -> dict[str, float]:
    """PED-ANOVA importances of the parameters (sum 1), computed on the complete trials."""
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    with _quiet(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        imp = dict(get_param_importances(ostudy, evaluator=PedAnovaImportanceEvaluator()))
    # optuna warns (and returns equal shares) when the best trials cannot be told from the rest
    if any("importances will be equal" in str(w.message).lower() for w in caught):
        raise StudyUnavailable("the best trials cannot be told apart from the others (tied or too few "
                               "values), so PED-ANOVA gives no ranking")
    return imp


def importance_figure(ostudy, info: dict[str, Any], path: Path, n_complete: int) -> Path:
    imp = importances(ostudy)
    if not imp:
        raise StudyUnavailable("no parameters to rank")
    names = sorted(imp, key=imp.get)
    fig, (ax,) = new_figure(8, max(2.8, 0.45 * len(names) + 1.6))
    bars = ax.barh(names, [imp[n] for n in names], color="tab:blue")
    ax.bar_label(bars, labels=[f"{imp[n]:.2f}" for n in names], padding=3, fontsize=8)
    ax.set_xlim(0, max(1e-9, max(imp.values())) * 1.2)
    ax.set_xlabel("importance (share of the total)")
    ax.set_ylabel("parameter")
    fig.suptitle(f"{ostudy.study_name}: parameter importance\n({IMPORTANCE_METHOD} on {n_complete} complete "
                 f"trials, objective {info.get('metric') or 'value'})", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return save(fig, path)


def study_figures(study: Study, out: Path, warn: Callable[[str], None], label: str | None = None) -> list[Path]:
    """``study_<name>_history.png`` and ``study_<name>_importance.png`` (``label`` instead of the
    study's name when given); what cannot be drawn is skipped with one warning line."""
    name = safe_name(label or study.name)
    try:
        ostudy = open_study(study)
    except StudyUnavailable as exc:
        warn(f"study {study.name} ({study.source}): {exc}; no figures")
        return []
    if len(ostudy.directions) > 1:
        warn(f"study {study.name}: multi-objective studies are not drawn")
        return []
    from optuna.trial import TrialState

    written = [history_figure(ostudy, study.info, out / f"study_{name}_history.png")]
    n_complete = sum(t.state == TrialState.COMPLETE for t in ostudy.get_trials(deepcopy=False))
    if n_complete < MIN_TRIALS_FOR_IMPORTANCE:
        warn(f"study {study.name}: {n_complete} complete trial{'s' * (n_complete != 1)}, parameter "
             f"importance needs {MIN_TRIALS_FOR_IMPORTANCE}; study_{name}_importance.png skipped")
        return written
    try:
        written.append(importance_figure(ostudy, study.info, out / f"study_{name}_importance.png", n_complete))
    except Exception as exc:  # an evaluator that cannot rank these trials must not end the report
        msg = first_line(exc)
        warn(f"study {study.name}: no parameter importance ({msg}); study_{name}_importance.png skipped")
    return written


def study_summary(study: Study) -> str:
    """One Markdown line about a sweep, from its ``study.json``."""
    i = study.info
    best = i.get("best") or {}
    states = i.get("states") or {}
    parts = [f"`{study.name}` ({study.source})"]
    if i.get("dataset") or i.get("model"):
        parts.append(f"{i.get('model', '?')} on {i.get('dataset', '?')}")
    if i.get("metric"):
        parts.append(f"{i.get('direction', 'maximize')} {i['metric']}")
    if i.get("n_trials") is not None:
        st = ", ".join(f"{v} {k.lower()}" for k, v in states.items())
        parts.append(f"{i['n_trials']} trials" + (f" ({st})" if st else ""))
    if best:
        value = best.get("value")
        value = f"{value:.4f}" if isinstance(value, (int, float)) and not math.isnan(value) else value
        params = ", ".join(f"{k}={v}" for k, v in (best.get("params") or {}).items())
        parts.append(f"best trial {best.get('number', '?')}: {value}" + (f" with {params}" if params else ""))
    if i.get("final") and (study.path.parent / str(i["final"]) / "summary.json").is_file():
        parts.append(f"final re-run in {i['final']}")
    return "; ".join(parts)
