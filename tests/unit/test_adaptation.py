"""emovox.adaptation: posterior normalisation by the speaker's mean posterior, with known
answers on synthetic posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.adaptation import (
    PRIOR_FLOOR,
    Adaptation,
    AdaptMethod,
    adapt,
    dominant_class,
    speaker_prior,
)


def _biased_speaker(bias: float = 0.35, n_per_class: int = 5, c: int = 4) -> tuple[
        np.ndarray, np.ndarray]:
    """A speaker the model hears as class 0: every clip gets ``bias`` extra mass on class 0;
    the true class has 0.3 more than the others before that bias."""
    rows, y = [], []
    for k in range(c):
        for _ in range(n_per_class):
            p = np.full(c, 0.1)
            p[k] += 0.3
            p[0] += bias
            rows.append(p / p.sum())
            y.append(k)
    return np.array(rows), np.array(y)


def test_a_biased_speakers_argmax_is_corrected() -> None:
    p, y = _biased_speaker()
    assert np.mean(p.argmax(1) == y) == pytest.approx(0.25)  # everything called class 0
    q = adapt(p, speaker_prior(p))
    assert np.array_equal(q.argmax(1), y)


def test_the_prior_is_the_mean_posterior() -> None:
    p = np.array([[0.6, 0.4], [0.2, 0.8]])
    np.testing.assert_allclose(speaker_prior(p, pseudo_clips=0), [0.4, 0.6])
    np.testing.assert_allclose(speaker_prior(p, weights=np.array([3.0, 1.0]), pseudo_clips=0),
                               [0.5, 0.5])


def test_a_prior_of_few_clips_is_shrunk_towards_uniform() -> None:
    p = np.array([[0.6, 0.4], [0.2, 0.8]])  # mean [0.4, 0.6] of 2 clips
    # (2 * [0.4, 0.6] + 2 * [0.5, 0.5]) / 4 with 2 pseudo-clips
    np.testing.assert_allclose(speaker_prior(p, pseudo_clips=2), [0.45, 0.55])
    # default n0 = 4: 2 clips move it a third of the way, 400 clips almost all the way
    np.testing.assert_allclose(speaker_prior(p), [0.5 - 0.1 / 3, 0.5 + 0.1 / 3])
    many = np.repeat(p, 200, axis=0)
    np.testing.assert_allclose(speaker_prior(many), [0.4, 0.6], atol=1e-3)
    # a mean handed over as one row counts as n_clips clips
    np.testing.assert_allclose(speaker_prior(p.mean(0)[None], n_clips=2),
                               speaker_prior(p))
    with pytest.raises(ValueError, match="pseudo_clips"):
        speaker_prior(p, pseudo_clips=-1)


def test_known_answer_of_one_row() -> None:
    q = adapt(np.array([0.5, 0.3, 0.2]), np.array([0.5, 0.25, 0.25]))
    raw = np.array([1.0, 1.2, 0.8])
    np.testing.assert_allclose(q, raw / raw.sum())


def test_uniform_prior_is_the_identity() -> None:
    p, _ = _biased_speaker()
    np.testing.assert_allclose(adapt(p, np.full(p.shape[1], 1 / p.shape[1])), p)


def test_alpha_zero_is_the_identity_and_half_is_between() -> None:
    p, _ = _biased_speaker()
    m = speaker_prior(p)
    np.testing.assert_allclose(adapt(p, m, alpha=0.0), p)
    half = adapt(p, m, alpha=0.5)
    full = adapt(p, m)
    assert np.all(half[:, 0] < p[:, 0]) and np.all(full[:, 0] < half[:, 0])


def test_rows_sum_to_one_and_shapes_are_kept() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(8), size=50)
    q = adapt(p, speaker_prior(p[:10]))
    assert q.shape == p.shape
    np.testing.assert_allclose(q.sum(1), 1.0)
    one = adapt(p[0], speaker_prior(p[:10]))
    assert one.shape == (8,)
    np.testing.assert_allclose(one, q[0])


def test_a_zero_prior_entry_is_floored_not_infinite() -> None:
    q = adapt(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(q, np.array([PRIOR_FLOOR, 1.0]) / (1 + PRIOR_FLOOR), rtol=1e-5)


def test_one_emotion_references_remove_that_emotion() -> None:
    """The documented failure: references of one emotion make that emotion the prior."""
    angry = np.array([[0.1, 0.8, 0.1]] * 5)
    q = adapt(np.array([0.1, 0.8, 0.1]), speaker_prior(angry, pseudo_clips=0))
    np.testing.assert_allclose(q, [1 / 3] * 3)  # the label is gone
    # shrinkage towards uniform only softens it with 5 references: 0.8 -> 0.58
    q = adapt(np.array([0.1, 0.8, 0.1]), speaker_prior(angry))
    assert 0.5 < q[1] < 0.6 and q.argmax() == 1
    # with many one-emotion references it is gone again
    q = adapt(np.array([0.1, 0.8, 0.1]), speaker_prior(np.repeat(angry, 100, axis=0)))
    np.testing.assert_allclose(q, [1 / 3] * 3, atol=0.01)


@pytest.mark.parametrize(("probs", "prior", "match"), [
    (np.array([[0.5, np.nan]]), np.array([0.5, 0.5]), "NaN"),
    (np.array([[0.5, 0.5]]), np.array([0.5, np.inf]), "NaN"),
    (np.array([[0.5, 0.5]]), np.array([0.2, 0.3, 0.5]), "prior must be"),
    (np.array([[-0.1, 1.1]]), np.array([0.5, 0.5]), "non-negative"),
    (np.array([[0.0, 0.0]]), np.array([0.5, 0.5]), "non-negative"),
    (np.zeros((2, 2, 2)), np.array([0.5, 0.5]), "shape"),
    (np.array([[1.0]]), np.array([1.0]), "C >= 2"),
    (np.array([[0.5, 0.5]]), np.array([[0.5, 0.5]]), "prior must be"),
])
def test_adapt_rejects_bad_input(probs: np.ndarray, prior: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        adapt(probs, prior)


@pytest.mark.parametrize(("probs", "weights", "match"), [
    (np.zeros((0, 3)), None, "N >= 1"),
    (np.array([0.2, 0.8]), None, r"\(N, C\)"),
    (np.array([[0.2, 0.8], [np.nan, 0.5]]), None, "NaN"),
    (np.array([[0.2, 0.8]]), np.array([1.0, 2.0]), "weights"),
    (np.array([[0.2, 0.8]]), np.array([0.0]), "weights"),
    (np.array([[0.2, 0.8]]), np.array([-1.0]), "weights"),
])
def test_speaker_prior_rejects_bad_input(probs: np.ndarray, weights: np.ndarray | None,
                                         match: str) -> None:
    with pytest.raises(ValueError, match=match):
        speaker_prior(probs, weights)


def test_alpha_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        adapt(np.array([0.5, 0.5]), np.array([0.5, 0.5]), alpha=1.5)


def test_adaptation_record() -> None:
    d = Adaptation(True, 12, "Actor_03", prior={"sad": 0.123456, "angry": 0.876544}).to_dict()
    assert d == {"method": AdaptMethod.SPEAKER_PRIOR.value, "applied": True,
                 "reference_clips": 12, "group": "Actor_03", "reason": None,
                 "prior": {"sad": 0.1235, "angry": 0.8765}}
    assert Adaptation(False, 2, "g", "too few").to_dict()["prior"] is None


def test_dominant_class() -> None:
    labels = ("a", "b", "c")
    assert dominant_class(np.array([0.5, 0.3, 0.2]), labels) == ("a", 0.5)
    assert dominant_class(np.array([0.49, 0.3, 0.21]), labels) is None
    assert dominant_class(np.array([1.0, 3.0, 0.0]), labels) == ("b", 0.75)  # renormalised
    with pytest.raises(ValueError, match="prior must be"):
        dominant_class(np.array([0.5, 0.5]), labels)
