from __future__ import annotations

import numpy as np
import pytest

from emovox.config import ExperimentConfig, Protocol
from emovox.labels import LABELS, Emotion, shared_classes
from emovox.metrics import compute_metrics, expected_calibration_error, summarize


def test_metrics_known_answer():
    labels = ["a", "b", "c"]
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    m = compute_metrics(y, p, labels)
    assert m.wa == pytest.approx(100 * 6 / 8)
    assert m.recall == pytest.approx({"a": 75.0, "b": 50.0, "c": 100.0})
    assert m.ua == pytest.approx(75.0)
    assert m.precision["a"] == pytest.approx(75.0)
    assert m.confusion == [[3, 1, 0], [1, 1, 0], [0, 0, 2]]
    assert m.worst_recall == ("b", 50.0)


def test_absent_class_not_counted_in_ua():
    m = compute_metrics(np.array([0, 1]), np.array([0, 1]), ["a", "b", "c"])
    assert m.ua == 100.0 and m.macro_f1 == 100.0
    assert m.worst_recall[1] == 100.0


def test_summarize_mean_std():
    ms = [compute_metrics(np.array([0, 1]), np.array(p), ["a", "b"]) for p in ([0, 1], [0, 0])]
    s = summarize(ms)
    assert s["ua"]["mean"] == pytest.approx(75.0) and s["ua"]["std"] == pytest.approx(25.0)


def test_ece_perfectly_calibrated_and_overconfident():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20000)
    conf = 0.8
    correct = rng.random(20000) < conf
    pred = np.where(correct, y, 1 - y)
    proba = np.zeros((20000, 2))
    proba[np.arange(20000), pred] = conf
    proba[np.arange(20000), 1 - pred] = 1 - conf
    assert expected_calibration_error(proba, y) < 0.02
    over = np.zeros_like(proba)
    over[np.arange(20000), pred] = 0.99
    over[np.arange(20000), 1 - pred] = 0.01
    assert expected_calibration_error(over, y) == pytest.approx(0.19, abs=0.02)


def test_label_order_and_shared_classes():
    assert LABELS == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
    a = {"x": Emotion.HAPPY, "y": Emotion.CALM, "z": None}
    b = {"q": Emotion.HAPPY, "r": Emotion.SAD}
    assert shared_classes(a, b) == [Emotion.HAPPY]


def test_config_roundtrip(tmp_path):
    cfg = ExperimentConfig()
    cfg.split.protocol = Protocol.LOSO
    cfg.data.speakers = ("01", "02")
    cfg.model.params = {"C": 0.1}
    cfg.save_yaml(tmp_path / "c.yaml")
    back = ExperimentConfig.load_yaml(tmp_path / "c.yaml")
    assert back == cfg


def test_result_figures_are_built_without_pyplot(tmp_path):
    from matplotlib.figure import Figure

    from emovox.plots import confusion_figure, plot_confusion, recall_figure

    fig = confusion_figure([[3, 1], [0, 4]], ["happy", "sad"], "a title", dpi=50)
    assert isinstance(fig, Figure) and fig.axes[0].get_title() == "a title"
    assert [t.get_text() for t in fig.axes[0].texts] == ["3", "1", "0", "4"]
    rec = recall_figure({"happy": 75.0, "sad": 100.0, "angry": 0.0})
    chance = [ln for ln in rec.axes[0].lines if ln.get_label() == "chance"]
    assert len(chance) == 1 and chance[0].get_ydata()[0] == pytest.approx(100 / 3)
    plot_confusion([[1, 0], [0, 1]], ["a", "b"], tmp_path / "c.png", "t")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
