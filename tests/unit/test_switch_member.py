"""emovox.experiment.fuse.switch_runs and bench/switch_member.py: the out-of-fold record of a
member that reads each clip with one of two models, chosen by the clip's bandwidth."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import switch_member  # noqa: E402

from emovox import augment as aug  # noqa: E402
from emovox.errors import ConfigError  # noqa: E402
from emovox.experiment.fuse import fuse_runs, switch_runs  # noqa: E402
from emovox.experiment.rundir import Prediction, Predictions, read_run, write_run  # noqa: E402
from emovox.labels import LABELS  # noqa: E402
from emovox.metrics import compute_metrics  # noqa: E402

SR = 16000
#: (fold, corpus, speaker, file, true label)
CLIPS = [(0, "ravdess", "ravdess:01", "03-01-05-01-01-01-01.flac", "angry"),
         (0, "ravdess", "ravdess:01", "03-01-04-01-01-01-01.flac", "sad"),
         (1, "urdu", "urdu:SM1", "SM1_F1_A01.flac", "angry"),
         (1, "urdu", "urdu:SM2", "SM2_F2_S01.flac", "sad")]


def one_hot_run(root: Path, name: str, answers: list[str], model: str) -> Path:
    """A run directory whose clip i answers ``answers[i]`` with probability 0.9."""
    rows = []
    for (fold, corpus, spk, file, true), ans in zip(CLIPS, answers, strict=True):
        p = np.full(len(LABELS), 0.1 / (len(LABELS) - 1))
        p[LABELS.index(ans)] = 0.9
        rows.append(Prediction(str(root / corpus / file), spk, true, ans, tuple(p), fold=fold,
                               corpus=corpus))
    y = [LABELS.index(c[4]) for c in CLIPS]
    pooled = compute_metrics(np.array(y), np.array([LABELS.index(a) for a in answers]),
                             list(LABELS))
    meta = {"model": model, "protocol": "loco", "speaker_independent": True,
            "folds": [{"index": f, "fit_seconds": 1.0} for f in (0, 1)]}
    write_run(root / name, meta, Predictions(list(LABELS), rows), pooled=pooled,
              titles=("t", "t"))
    return root / name


def test_each_clip_takes_the_chosen_runs_probabilities(tmp_path):
    wide = one_hot_run(tmp_path, "wide", ["angry", "angry", "happy", "happy"], "prosody_logreg")
    narrow = one_hot_run(tmp_path, "narrow", ["sad", "sad", "angry", "sad"], "robust")
    res = switch_runs(wide, narrow, tmp_path / "sw", lambda c: c.corpus == "urdu")
    assert res["model"] == "prosody_logreg|robust"  # as `emovox ensemble` names the member
    assert res["switched_clips"] == {"ravdess": {"narrow": 0, "of": 2},
                                     "urdu": {"narrow": 2, "of": 2}}
    got = {Path(r.path).name: r.pred for r in read_run(tmp_path / "sw").predictions.rows}
    assert got == {"03-01-05-01-01-01-01.flac": "angry", "03-01-04-01-01-01-01.flac": "angry",
                   "SM1_F1_A01.flac": "angry", "SM2_F2_S01.flac": "sad"}
    assert res["per_corpus"]["urdu"]["ua"] == pytest.approx(100.0)
    assert res["per_corpus"]["ravdess"]["ua"] == pytest.approx(50.0)
    # nothing switched: the wide run's figures; the result fuses like any run
    none = switch_runs(wide, narrow, tmp_path / "none", lambda c: False)
    # wide alone, fused as any run (a copy of it is refused: stop 53)
    itself = fuse_runs([wide, narrow], tmp_path / "ww", [1.0, 1e-9])  # a weight 0 is refused
    assert none["per_corpus"] == itself["per_corpus"] and none["per_corpus"]["urdu"]["ua"] == 0
    assert none["summary"] == itself["summary"]
    fused = fuse_runs([wide, tmp_path / "sw"], tmp_path / "f")
    assert fused["model"] == "fusion(prosody_logreg+prosody_logreg|robust)"


def test_runs_over_other_clips_or_protocols_are_refused(tmp_path):
    wide = one_hot_run(tmp_path, "wide", ["angry"] * 4, "a")
    narrow = one_hot_run(tmp_path, "narrow", ["sad"] * 4, "b")
    text = (narrow / "predictions.csv").read_text().replace("SM2_F2_S01", "SM2_F2_S02")
    (narrow / "predictions.csv").write_text(text)
    with pytest.raises(ConfigError, match="other test clips"):
        switch_runs(wide, narrow, tmp_path / "x", lambda c: True)
    other = one_hot_run(tmp_path, "other", ["sad"] * 4, "b")
    meta = json.loads((other / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**meta, "protocol": "emobox"}))
    with pytest.raises(ConfigError, match="another protocol"):
        switch_runs(wide, other, tmp_path / "y", lambda c: True)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_the_bench_switches_telephone_band_clips_only(tmp_path):
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    full, tel = tmp_path / "full.flac", tmp_path / "tel.flac"
    sf.write(full, noise, SR)
    sf.write(tel, aug.band_limit(noise, SR, 300.0, 3400.0), SR)
    is_narrow = switch_member.narrow_band(switch_member.NARROW_BAND_FLOOR_DB)
    assert not is_narrow(Prediction(str(full), "s", "sad"))
    assert is_narrow(Prediction(str(tel), "s", "sad"))
    with pytest.raises(SystemExit, match="not found"):
        is_narrow(Prediction(str(tmp_path / "gone.flac"), "s", "sad"))
