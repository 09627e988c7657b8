"""Late fusion: several models, each on its own feature stream, probabilities averaged.

Each member is fitted on the same training clips (its own input), with the same
validation speakers for early stopping. The weights are fixed in the registry, never
tuned on test speakers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emovox.models.base import Model


class FusionModel:
    """``members[k] = (model, input_index)``; ``predict_proba`` is the weighted mean."""

    def __init__(self, members: Sequence[tuple[Model, int]], weights: Sequence[float]) -> None:
        if len(members) != len(weights) or not members:
            raise ValueError("one weight per member, at least one member")
        self.members = list(members)
        w = np.asarray(weights, float)
        self.weights = w / w.sum()

    @property
    def history(self):  # the first neural member's curves, for the run directory
        return next((m.history for m, _ in self.members if hasattr(m, "history")), None)

    def fit(self, x_train, y_train, x_val, y_val) -> FusionModel:
        for model, k in self.members:
            model.fit(x_train[k], y_train, x_val[k], y_val)
        return self

    def member_probas(self, x) -> dict[str, np.ndarray]:
        """Each member's probabilities, keyed ``"<index>:<class name>"``."""
        return {f"{i}:{type(m).__name__}": m.predict_proba(x[k])
                for i, (m, k) in enumerate(self.members)}

    def predict_proba(self, x) -> np.ndarray:
        return sum(w * m.predict_proba(x[k]) for (m, k), w in
                   zip(self.members, self.weights, strict=True))
