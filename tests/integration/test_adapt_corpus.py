"""``--adapt corpus`` on fake RAVDESS, EMOVO and URDU trees: every corpus's features are
z-scored with that corpus's own statistics (the held-out corpus's from its unlabelled clips),
labels and other corpora's audio never reach them, every fold is corpus-disjoint, runs are
labelled apart, and protocols other than ``loco`` are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emovox.cli import app
from emovox.config import Adapt, DataConfig, ExperimentConfig, ModelConfig, Protocol, SplitConfig
from emovox.corpora.base import Utterance
from emovox.errors import ConfigError
from emovox.experiment.adapt import check_speaker_disjoint, group_of
from emovox.experiment.runner import prepare_data
from emovox.features.speaker_norm import normalise, vector_stats
from emovox.labels import Emotion
from emovox.models import get_model_spec
from emovox.splits import Fold
from extra_trees import make_fake_emovo, make_fake_urdu
from run_variants import another_run

LABEL = "corpus-adapted: uses unlabelled audio of the test corpus"


@pytest.fixture(scope="module")
def extra(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("extra")
    return make_fake_emovo(root / "emovo"), make_fake_urdu(root / "urdu")


def _cfg(rav, extra, cache, adapt=Adapt.CORPUS) -> ExperimentConfig:
    emovo, urdu = extra
    return ExperimentConfig(
        data=DataConfig(root=str(rav), corpora=(f"emovo={emovo}", f"urdu={urdu}")),
        split=SplitConfig(protocol=Protocol.LOCO, n_val_speakers=1),
        model=ModelConfig("egemaps_logreg"), cache_dir=str(cache), n_jobs=1, adapt=adapt)


def test_features_are_zscored_per_corpus_from_that_corpus_alone(fake_ravdess, extra,
                                                                 fake_cache):
    spec = get_model_spec("egemaps_logreg")
    data = prepare_data(_cfg(fake_ravdess, extra, fake_cache), spec)
    corpus = np.array([u.corpus for u in data.utts])
    assert set(corpus) == {"ravdess", "emovo", "urdu"}
    x = np.stack(data.feats)
    for c in set(corpus):
        z = x[corpus == c]
        np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
        assert np.all((np.abs(z.std(0) - 1.0) < 1e-3) | (z.std(0) < 1e-3))
    summary = data.extraction["adapt"]
    assert summary["mode"] == "corpus" and summary["n_corpora"] == 3
    assert summary["clips_per_corpus"]["ravdess"] == int((corpus == "ravdess").sum())
    # a corpus's normalised features depend on its own audio only: the same corpus alone
    # (the other two left out) gives the same numbers
    alone = ExperimentConfig(data=DataConfig(root=str(fake_ravdess)),
                             split=SplitConfig(protocol=Protocol.EMOBOX), model=ModelConfig(
                                 "egemaps_logreg"), cache_dir=str(fake_cache), n_jobs=1)
    raw = np.stack(prepare_data(alone, spec).feats)
    np.testing.assert_allclose(x[corpus == "ravdess"], normalise(raw, vector_stats(raw)),
                               rtol=1e-5, atol=1e-5)


def test_group_of_and_the_fold_check():
    a = Utterance(Path("a.wav"), "ravdess", "ravdess:01", Emotion.SAD, "04")
    b = Utterance(Path("b.wav"), "emovo", "emovo:f1", Emotion.SAD, "tri")
    assert group_of(a, Adapt.CORPUS) == "ravdess" and group_of(a, Adapt.SPEAKER) == "ravdess:01"
    ok = Fold(0, np.array([0]), np.array([], int), np.array([1]), ("emovo:f1",), ())
    check_speaker_disjoint(ok, [a, b], Adapt.CORPUS)
    mixed = Fold(3, np.array([0]), np.array([], int), np.array([1]), ("ravdess:02",), ())
    with pytest.raises(ConfigError, match="corpus-disjoint folds; fold 3 has ravdess"):
        check_speaker_disjoint(mixed, [a, a], Adapt.CORPUS)


def test_evaluate_corpus_adapted_loco_is_labelled_apart(fake_ravdess, extra, fake_cache,
                                                        tmp_path, monkeypatch):
    emovo, urdu = extra
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, [
        "evaluate", "--data", str(fake_ravdess), "--data", f"emovo={emovo}",
        "--data", f"urdu={urdu}", "--protocol", "loco", "--folds", "1",
        "--val-speakers", "1", "--model", "egemaps_logreg", "--cache-dir", str(fake_cache),
        "--jobs", "1", "--adapt", "corpus"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    said = " ".join(r.output.split())
    assert f"loco ({LABEL})" in said and "speaker-independent)" not in said  # the title
    (run,) = (tmp_path / "runs").iterdir()  # named apart from speaker-adapted runs
    assert run.name.startswith("egemaps_logreg-loco-corpus-adapt-"), run.name
    m = json.loads((run / "metrics.json").read_text())
    assert m["adapt"] == "corpus" and m["extraction"]["adapt"]["n_corpora"] == 3
    r = CliRunner().invoke(app, ["report", str(run)])
    assert r.exit_code == 0 and f"({LABEL})" in r.output
    another_run(run, tmp_path / "copy")  # a run given twice, or a copy, is refused (52, 53)
    r = CliRunner().invoke(app, ["fuse", str(run), str(tmp_path / "copy"), "--out",
                                 str(tmp_path / "f")])
    assert r.exit_code == 0 and f"({LABEL}: not comparable" in " ".join(r.output.split())


@pytest.mark.slow
@pytest.mark.parametrize("adapt", [Adapt.CORPUS, Adapt.NONE])
def test_a_corpus_adversary_sees_the_held_out_corpus_unlabelled_only_when_adapting(
        fake_ravdess, extra, fake_cache, tmp_path, fits, adapt):
    """``-p adversary_on=corpus``: the adversary names each training clip's corpus; in a
    corpus-adapted run the held-out corpus's test clips join it, features without labels
    (domain-adversarial adaptation); in a speaker-independent run no test clip does."""
    from emovox.experiment import run_experiment

    cfg = _cfg(fake_ravdess, extra, fake_cache, adapt)
    cfg.split = SplitConfig(protocol=Protocol.LOCO, folds=(2,), n_val_speakers=1)
    cfg.model = ModelConfig("ecapa_cmvn", {"epochs": 1, "channels": 16, "adversary": 1.0,
                                           "adversary_on": "corpus", "threads": 1})
    res = run_experiment(cfg, tmp_path / "run")
    (fold,) = res.folds
    (n, groups, unlabelled), = fits
    assert len(groups) == n == fold.n_train and set(groups) == {"ravdess", "emovo"}
    if adapt is Adapt.NONE:
        assert unlabelled is None
        return
    x, corpora = unlabelled
    assert len(x) == len(corpora) == fold.n_test and set(corpora) == {"urdu"}


def test_a_corpus_adversary_with_one_corpus_to_name_is_refused_before_extraction(
        fake_ravdess, extra, fake_cache, tmp_path, monkeypatch):
    """Refused before any feature is extracted: RAVDESS alone (EmoBox, or `train`), and loco
    over two corpora without --adapt (each fold trains on one); loco over two corpora with
    --adapt corpus is accepted (the held-out corpus joins unlabelled)."""
    from emovox.experiment import dataset

    def extracted(*_a, **_k):
        raise AssertionError("features were extracted")

    monkeypatch.setattr("emovox.experiment.runner.featurise", extracted)
    monkeypatch.setattr("emovox.experiment.package.featurise", extracted)
    monkeypatch.chdir(tmp_path)
    emovo, _ = extra
    monkeypatch.setenv("EMOVOX_CACHE", str(fake_cache))
    params = ["-p", "adversary=1", "-p", "adversary_on=corpus"]
    for args in (["evaluate", "--data", str(fake_ravdess), "--model", "ecapa_cmvn"],
                 ["train", "--data", str(fake_ravdess), "--model", "ecapa_cmvn", "--out",
                  str(tmp_path / "m")],
                 ["evaluate", "--data", str(fake_ravdess), "--data", f"emovo={emovo}",
                  "--protocol", "loco", "--model", "ecapa_cmvn"]):
        r = CliRunner().invoke(app, args + params, env={"COLUMNS": "200"})
        assert r.exit_code != 0 and "would train on one" in " ".join(r.output.split()), (
            args, r.output)
    cfg = ExperimentConfig(
        data=DataConfig(root=str(fake_ravdess), corpora=(f"emovo={emovo}",)),
        split=SplitConfig(protocol=Protocol.LOCO), adapt=Adapt.CORPUS,
        model=ModelConfig("ecapa_cmvn", {"adversary": "1", "adversary_on": "corpus"}))
    utts = dataset.load_dataset(cfg.data).utts
    dataset.check_adversary(cfg, utts)  # accepted
    with pytest.raises(ConfigError, match="would train on one"):  # emovo only trains
        dataset.check_adversary(cfg, utts, ("ravdess",))
    cfg.adapt = Adapt.NONE  # loco over RAVDESS + EMOVO + test-only URDU: its fold trains on two
    three = dataset.load_dataset(DataConfig(root=str(fake_ravdess), corpora=(
        f"emovo={emovo}", f"urdu={extra[1]}"))).utts
    with pytest.raises(ConfigError, match="would train on one"):  # all folds: some on one
        dataset.check_adversary(cfg, three, ("urdu",))
    cfg.split = SplitConfig(protocol=Protocol.LOCO, folds=(2,))  # URDU's fold: RAVDESS +
    dataset.check_adversary(cfg, three, ("urdu",))  # EMOVO train: accepted
    cfg.split = SplitConfig(protocol=Protocol.LOCO, folds=(0,))  # RAVDESS's: EMOVO alone
    with pytest.raises(ConfigError, match="would train on one"):  # (refused by the trainer
        dataset.check_adversary(cfg, three, ("urdu",))  # after extraction: review, 45)


def test_a_speaker_adversary_refuses_clips_without_a_speaker() -> None:
    """A folder corpus read without --speaker-pattern gives every clip the speaker
    'folder:unknown': the speaker adversary named them all one speaker, silently (code
    review, stop 45). Refused before any feature is extracted; a test-only corpus the
    adversary never reads (no --adapt) is left alone."""
    from emovox.experiment import dataset

    def clip(corpus: str, speaker: str) -> Utterance:
        return Utterance(Path(f"/x/{corpus}-{speaker}.wav"), corpus, f"{corpus}:{speaker}",
                         Emotion.ANGRY, "angry")

    utts = [clip("ravdess", "01"), clip("ravdess", "02"), clip("folder", "unknown")]
    cfg = ExperimentConfig(data=DataConfig(root="/x"), model=ModelConfig(
        "ecapa_cmvn", {"adversary": "1"}))
    with pytest.raises(ConfigError, match="clips of folder have none"):
        dataset.check_adversary(cfg, utts)
    cfg.split = SplitConfig(protocol=Protocol.LOCO)
    dataset.check_adversary(cfg, utts, ("folder",))  # never read by the adversary
    cfg.adapt = Adapt.SPEAKER
    with pytest.raises(ConfigError, match="clips of folder have none"):
        dataset.check_adversary(cfg, utts, ("folder",))
    cfg.model = ModelConfig("ecapa_cmvn", {})  # no adversary: nothing to check
    dataset.check_adversary(cfg, utts)
