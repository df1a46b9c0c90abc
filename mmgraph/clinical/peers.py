"""The peers a biostatistician would fit, on the same folds as the graph models.

Each takes the patient's modalities concatenated into one row (``NaN`` where a modality is
missing), imputes missing values with the training fold's column means, and fits on the whole
training fold (:class:`mmgraph.tasks.GraphPrediction` passes it; no early stopping is needed):

==========  =====================================================  ================================
``kind``    survival endpoint (scikit-survival, GPL: the extra)    classification endpoint
==========  =====================================================  ================================
``coxph``   Cox proportional hazards with a ridge penalty           ridge logistic regression
            (``CoxPHSurvivalAnalysis(alpha)``, Breslow ties)        (scikit-learn)
``rsf``     random survival forest (``RandomSurvivalForest``)       random forest (scikit-learn)
==========  =====================================================  ================================

The penalty (``alphas``; logistic regression: ``C = 1 / alpha``) is chosen by an inner
``inner_folds``-fold cross-validation *inside the training fold* (C-index, or ROC AUC), as a
careful analyst would; the forests use fixed, commonly used settings.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch import nn

from mmgraph.checks import choice, integer
from mmgraph.errors import ConfigError, DataError

KINDS = ("coxph", "rsf")


def _sksurv(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError('the survival peers need scikit-survival (GPL, an optional extra): '
                        'pip install "mmgraph[clinical]"') from None


class Peer(nn.Module):
    """A classical model in the runner's model slot (no trainable tensors: evaluated once per run).

    Args:
        kind: ``coxph`` or ``rsf``.
        alphas: ridge penalties searched by inner cross-validation (``coxph``).
        inner_folds: folds of that search.
        n_estimators, min_samples_split, min_samples_leaf, max_features: the forests' settings.
        in_channels, out_channels: given by the task; unused.
    """

    is_peer = True

    def __init__(self, kind: str = "coxph", alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0),
                 inner_folds: int = 3, n_estimators: int = 200, min_samples_split: int = 10,
                 min_samples_leaf: int = 15, max_features: str | float | None = "sqrt",
                 in_channels: int | None = None, out_channels: int | None = None):
        super().__init__()
        self.kind = choice("model.module.kind", kind, KINDS)
        self.alphas = [float(a) for a in alphas]
        if not self.alphas or min(self.alphas) <= 0:
            raise ConfigError(f"model.module.alphas must be positive penalties; got {list(alphas)}")
        self.inner_folds = integer("model.module.inner_folds", inner_folds, 2)
        self.forest = {"n_estimators": integer("model.module.n_estimators", n_estimators, 1),
                       "min_samples_split": integer("model.module.min_samples_split", min_samples_split, 2),
                       "min_samples_leaf": integer("model.module.min_samples_leaf", min_samples_leaf, 1),
                       "max_features": max_features}
        self.model: Any = None
        self.chosen: dict[str, Any] = {}
        self.endpoint = None

    def reset_parameters(self) -> None:
        self.model, self.chosen, self.endpoint = None, {}, None

    def forward(self, *args, **kwargs):
        raise RuntimeError("a peer is fitted and scored by its task (GraphPrediction), not called")

    # ------------------------------------------------------------------ fitting
    def _pipeline(self, estimator):
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        # keep_empty_features: a column empty in this fold stays (as 0) so the widths agree
        return make_pipeline(SimpleImputer(strategy="mean", keep_empty_features=True), StandardScaler(),
                             estimator)

    def _search(self, pipeline, grid: dict, X, y, strata, seed: int, scoring=None):
        from sklearn.model_selection import GridSearchCV, StratifiedKFold

        folds = min(self.inner_folds, int(np.bincount(strata).min()))
        if len(grid[next(iter(grid))]) == 1 or folds < 2:
            return pipeline.set_params(**{k: v[0] for k, v in grid.items()}).fit(X, y), \
                {k: v[0] for k, v in grid.items()}
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        search = GridSearchCV(pipeline, grid, cv=list(cv.split(X, strata)), scoring=scoring,
                              error_score=np.nan, refit=True)
        import warnings

        with warnings.catch_warnings():  # penalties that do not converge score NaN and lose
            warnings.simplefilter("ignore")
            search.fit(X, y)
        return search.best_estimator_, {k.split("__")[-1]: v for k, v in search.best_params_.items()}

    def fit_survival(self, X: np.ndarray, time: np.ndarray, event: np.ndarray, seed: int = 0) -> "Peer":
        ensemble = _sksurv("sksurv.ensemble")
        linear = _sksurv("sksurv.linear_model")
        Surv = _sksurv("sksurv.util").Surv
        y = Surv.from_arrays(event=event.astype(bool), time=time.astype(float))
        if self.kind == "coxph":
            pipe = self._pipeline(linear.CoxPHSurvivalAnalysis(ties="breslow"))
            self.model, self.chosen = self._search(pipe, {"coxphsurvivalanalysis__alpha": self.alphas},
                                                   X, y, event.astype(int), seed)
        else:
            pipe = self._pipeline(ensemble.RandomSurvivalForest(random_state=seed, n_jobs=1, **self.forest))
            self.model = pipe.fit(X, y)
        self.endpoint = "survival"
        return self

    def fit_classes(self, X: np.ndarray, y: np.ndarray, num_classes: int, seed: int = 0) -> "Peer":
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression

        self.num_classes = int(num_classes)
        if self.kind == "coxph":
            pipe = self._pipeline(LogisticRegression(max_iter=2000))
            scoring = "roc_auc" if num_classes == 2 else "roc_auc_ovr"
            self.model, self.chosen = self._search(
                pipe, {"logisticregression__C": [1.0 / a for a in self.alphas]}, X, y, y, seed, scoring)
        else:
            self.model = self._pipeline(RandomForestClassifier(random_state=seed, n_jobs=1, **self.forest)).fit(X, y)
        self.endpoint = "classification"
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk scores ``[N]`` (survival: higher = earlier event) or probabilities ``[N, C]``."""
        if self.model is None:
            raise RuntimeError("the peer is not fitted")
        if self.endpoint == "survival":
            return np.asarray(self.model.predict(X), dtype=float)
        prob = np.zeros((len(X), self.num_classes))
        prob[:, self.model.classes_] = self.model.predict_proba(X)
        return prob

    def extra_repr(self) -> str:
        return f"kind={self.kind}, chosen={self.chosen}"

