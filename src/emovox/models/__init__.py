"""The model registry: every selectable model, its feature set and its builder."""

from __future__ import annotations

from emovox.models import classical
from emovox.models.base import Family, Model, ModelSpec

MODELS: dict[str, ModelSpec] = {
    "egemaps_logreg": ModelSpec(
        "egemaps_logreg", "egemaps", classical.logreg, Family.CLASSICAL,
        "eGeMAPSv02 functionals (88) + standardisation + logistic regression", origin="baseline",
    ),
    "egemaps_svm": ModelSpec(
        "egemaps_svm", "egemaps", classical.svm, Family.CLASSICAL,
        "eGeMAPSv02 functionals (88) + standardisation + RBF SVM", origin="baseline",
    ),
    "compare_logreg": ModelSpec(
        "compare_logreg", "compare", classical.logreg, Family.CLASSICAL,
        "ComParE_2016 functionals (6373) + standardisation + logistic regression",
        origin="baseline",
    ),
}


def get_model_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None


__all__ = ["MODELS", "Family", "Model", "ModelSpec", "get_model_spec"]
