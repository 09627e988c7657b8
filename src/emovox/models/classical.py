"""Classical baselines: scikit-learn pipelines on utterance-level functionals.

Everything learned from data (scaler, class weights) is fitted by ``fit`` on the
training side of a fold only. The validation speakers are added to the training
data: these models have no early stopping and fixed hyper-parameters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from emovox.models.configs import Gamma, LogregConfig, LogregCvConfig, SvmConfig


class SklearnModel:
    """Wraps a pipeline so ``predict_proba`` always has ``n_classes`` columns, even if
    a class is missing from one fold's training data."""

    def __init__(self, pipeline: Pipeline, n_classes: int) -> None:
        self.pipeline = pipeline
        self.n_classes = n_classes

    def fit(self, x_train, y_train, x_val, y_val) -> SklearnModel:
        x = np.concatenate([np.asarray(x_train), np.asarray(x_val)]) if len(y_val) else x_train
        y = np.concatenate([y_train, y_val]) if len(y_val) else y_train
        self.pipeline.fit(np.asarray(x, np.float64), np.asarray(y, int))
        return self

    def predict_proba(self, x) -> np.ndarray:
        p = self.pipeline.predict_proba(np.asarray(x, np.float64))
        out = np.zeros((len(p), self.n_classes))
        out[:, self.pipeline.classes_] = p
        return out


class ValidatedC(SklearnModel):
    """Logistic regression whose inverse regularisation ``C`` is chosen on the fold's
    validation speakers (training side), then refitted on training + validation clips.
    The test speakers play no part in the choice."""

    def __init__(self, n_classes: int, seed: int, grid: tuple[float, ...], max_iter: int) -> None:
        super().__init__(
            logreg(LogregConfig(max_iter=max_iter), n_classes=n_classes, seed=seed).pipeline,
            n_classes,
        )
        self.grid = tuple(grid)
        self.seed = seed
        self.max_iter = max_iter
        self.chosen_C: float | None = None  # noqa: N815
        self.val_ua: dict[float, float] = {}

    def fit(self, x_train, y_train, x_val, y_val) -> ValidatedC:
        from emovox.metrics import balanced_accuracy  # without sklearn's missing-class warning

        if len(y_val) == 0:
            raise ValueError("ValidatedC needs validation speakers to choose C")
        for c in self.grid:
            m = logreg(LogregConfig(C=c, max_iter=self.max_iter), n_classes=self.n_classes,
                       seed=self.seed)
            m.pipeline.fit(np.asarray(x_train, np.float64), np.asarray(y_train, int))
            pred = m.predict_proba(x_val).argmax(1)
            self.val_ua[c] = 100 * balanced_accuracy(y_val, pred)
        self.chosen_C = max(self.grid, key=lambda c: (self.val_ua[c], -c))  # ties: smaller C
        self.pipeline.set_params(clf__C=self.chosen_C)
        return super().fit(x_train, y_train, x_val, y_val)


def logreg_cv(cfg: LogregCvConfig | None = None, *, n_classes: int, seed: int = 0,
              **params: Any) -> ValidatedC:
    """:class:`ValidatedC` over ``cfg.grid``; ``params`` (:class:`LogregCvConfig` keys,
    validated) override ``cfg``."""
    cfg = (cfg or LogregCvConfig()).with_params(params)
    return ValidatedC(n_classes, seed, cfg.grid, cfg.max_iter)


def logreg(cfg: LogregConfig | None = None, *, n_classes: int, seed: int = 0,
           **params: Any) -> SklearnModel:
    """StandardScaler + multinomial logistic regression with balanced class weights;
    ``params`` (:class:`LogregConfig` keys, validated) override ``cfg``."""
    cfg = (cfg or LogregConfig()).with_params(params)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "clf",
                LogisticRegression(
                    C=cfg.C, max_iter=cfg.max_iter, class_weight="balanced", random_state=seed
                ),
            ),
        ]
    )
    return SklearnModel(pipe, n_classes)


def svm(cfg: SvmConfig | None = None, *, n_classes: int, seed: int = 0,
        **params: Any) -> SklearnModel:
    """StandardScaler + RBF SVM, balanced class weights; probabilities by sigmoid (Platt)
    calibration on 5 internal folds of the training data; ``params`` (:class:`SvmConfig`
    keys, validated) override ``cfg``."""
    cfg = (cfg or SvmConfig()).with_params(params)
    gamma = cfg.gamma.value if isinstance(cfg.gamma, Gamma) else cfg.gamma
    svc = SVC(C=cfg.C, gamma=gamma, class_weight="balanced", random_state=seed)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("clf", CalibratedClassifierCV(svc, method="sigmoid", ensemble=False, cv=5)),
        ]
    )
    return SklearnModel(pipe, n_classes)
