"""Researcher paths refuse what would mislead or destroy (research QA, stop 32): an adapted
run attached as a model's speaker-independent figures, another recipe's run, a teacher run
overwritten by its student, fold models of an adapted run served, absent classes scored
0 %, training parameters that fail after feature extraction, one emotion or one speaker,
typos in filters, a member given twice, folders left by killed runs."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from corpus_trees import make

from emovox.artifact import ArtifactError
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, Protocol
from emovox.corpora.base import Gender, Utterance
from emovox.errors import ConfigError
from emovox.fileio import remove_stale
from emovox.labels import LABELS, Emotion
from emovox.metrics import compute_metrics
from emovox.models import validate_params


def _cv_run(path: Path, **metrics) -> Path:
    path.mkdir(parents=True)
    summary = {k: {"mean": 50.0, "std": 1.0} for k in ("ua", "wa", "macro_f1", "weighted_f1")}
    (path / "metrics.json").write_text(json.dumps({
        "model": "prosody_logreg", "speaker_independent": True, "protocol": "emobox",
        "summary": summary, "pooled": {}, "worst_class": {"label": "sad", "recall": 1.0},
        **metrics}))
    (path / "predictions.csv").write_text("")  # what every run folder holds (stop 53)
    return path


def test_an_adapted_run_cannot_calibrate_a_model(tmp_path):
    from emovox.experiment.rundir import RunDirError, read_cv_run

    assert read_cv_run(_cv_run(tmp_path / "plain", adapt="none"), "prosody_logreg")
    with pytest.raises(RunDirError, match="--adapt speaker .* Calibrate on a run without"):
        read_cv_run(_cv_run(tmp_path / "a", adapt="speaker"), "prosody_logreg")


def test_another_recipe_is_named(tmp_path):
    from emovox.experiment.recipe import UNREADABLE, recipe_differences

    ours = ExperimentConfig(data=DataConfig(root="/r", corpora=("emovo=/e",)),
                            model=ModelConfig("crnn_cmvn", {"epochs": 3, "threads": 1}))
    run = tmp_path / "run"
    run.mkdir()
    same = ExperimentConfig(data=DataConfig(root="/elsewhere", corpora=("EMOVO=/x",)),
                            model=ModelConfig("crnn_cmvn", {"epochs": 3, "threads": 2}))
    same.save_yaml(run / "config.yaml")
    assert recipe_differences(run, ours.to_dict()) == []  # paths and threads do not matter
    ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig(
        "crnn_cmvn", {"epochs": 1})).save_yaml(run / "config.yaml")
    diffs = recipe_differences(run, ours.to_dict())
    assert diffs == ["corpora ravdess vs emovo+ravdess", "model parameters epochs 1 vs 3"]
    assert recipe_differences(tmp_path / "fused", ours.to_dict()) == []  # no config: unknown
    # defaults written out, augmentation settings without copies, a test-only corpus: alike
    ExperimentConfig(data=DataConfig(root="/r", corpora=("emovo=/e", "urdu=/u"),
                                     test_only=("urdu",)),
                     model=ModelConfig("crnn_cmvn", {"epochs": 3, "batch_size": 32}),
                     ).save_yaml(run / "config.yaml")
    assert recipe_differences(run, ours.to_dict()) == []
    for bad in ("data: [", "data: 5", "- a", "model: {name: prosody_logreg, params: 7}", " "):
        (run / "config.yaml").write_text(bad)  # unreadable or of another shape: said
        assert recipe_differences(run, ours.to_dict())[0].startswith(UNREADABLE), bad
    ExperimentConfig(data=DataConfig(root="/r", corpora=("emovo=/e",), speakers=("01",)),
                     model=ModelConfig("crnn_cmvn", {"epochs": 3})).save_yaml(run / "config.yaml")
    assert recipe_differences(run, ours.to_dict()) == ["speakers ['01'] vs []"]
    ExperimentConfig(data=DataConfig(root="/r", corpora=("emovo=/e",)), model=ModelConfig(
        "crnn_cmvn", {"epochs": 3, "batch_size": 32, "bogus": 1})).save_yaml(run / "config.yaml")
    assert recipe_differences(run, ours.to_dict()) == [  # only what differs (re-check 3)
        "model parameters bogus 1 vs None"]
    # the same data under another spelling of its reader is the same recipe (code review,
    # stop 47: "corpora crema-d+manifest vs cremad+csv")
    alias = dict(model=ModelConfig("crnn_cmvn", {"epochs": 3}))
    ExperimentConfig(data=DataConfig(corpus="manifest", root="/d/own.csv",
                                     corpora=("CREMA-D=/c",)), **alias).save_yaml(
        run / "config.yaml")
    mine = ExperimentConfig(data=DataConfig(corpus="csv", root="/d/own.csv",
                                            corpora=("cremad=/c",)), **alias)
    assert recipe_differences(run, mine.to_dict()) == []


def test_a_student_run_may_not_replace_its_teacher(tmp_path):
    from emovox.experiment.runner import run_experiment

    teacher = tmp_path / "teacher"
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path)), teachers=(str(teacher),))
    with pytest.raises(ConfigError, match="is a teacher run"):
        run_experiment(cfg, tmp_path / "." / "teacher")


def test_fold_models_of_an_adapted_run_are_not_served(tiny_model, tmp_path):
    from emovox.serving.predictor import Predictor

    folder = tmp_path / "fold0"
    shutil.copytree(tiny_model, folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["experiment_config"] = {**meta.get("experiment_config", {}), "adapt": "speaker"}
    (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="normalised per speaker .* without --adapt"):
        Predictor.from_artifact(folder)


def test_a_class_the_test_clips_lack_has_no_recall():
    m = compute_metrics(np.array([0, 0, 2, 2]), np.array([0, 3, 2, 2]), list(LABELS))
    assert set(m.recall) == {"neutral", "happy"} and m.recall["neutral"] == 50.0
    assert set(m.precision) == {"neutral", "happy", "sad"}  # sad was predicted: 0 %
    assert m.precision["sad"] == 0.0 and m.ua == 75.0
    assert m.worst_recall == ("neutral", 50.0)


@pytest.mark.parametrize(("key", "value", "why"), [
    ("batch_size", 0, ">= 1"), ("threads", 0, ">= 1"), ("epochs", 0, ">= 1"),
    ("lr", 0.0, "> 0"), ("label_smoothing", 1.5, ">= 0 and <= 0.99"), ("patience", -1, ">= 0"),
])
def test_training_parameters_out_of_range_fail_before_any_work(key, value, why):
    with pytest.raises(ConfigError, match=f"{key} must be {why}"):
        validate_params("crnn_cmvn", {key: value})
    assert validate_params("crnn_cmvn", {"epochs": 1, "threads": 1}) == {"epochs": 1,
                                                                           "threads": 1}


def test_one_emotion_or_one_speaker_is_refused_with_its_reason(tmp_path):
    from emovox.experiment.dataset import load_dataset
    from emovox.splits import make_folds

    root = tmp_path / "urdu"
    for spk in ("SM1", "SM2"):
        make(root, f"Angry/{spk}_F1_A01.wav")
    with pytest.raises(ConfigError, match=r"one emotion only \(angry\)"):
        load_dataset(DataConfig(corpus="urdu", root=str(root)))
    one = [Utterance(Path(f"/x/{i}.wav"), "ravdess", "ravdess:01", e, "", Gender.MALE, {})
           for i, e in enumerate((Emotion.SAD, Emotion.ANGRY))]
    with pytest.raises(ConfigError, match=r"no training speaker left: the data hold 1 speaker"):
        make_folds(one, Protocol.LOSO, n_val_speakers=0)
    from emovox.splits import check_speakers  # the same, before extraction (QA, stop 37)

    with pytest.raises(ConfigError, match=r"loso protocol needs two speakers .* hold 1"):
        check_speakers(one, Protocol.LOSO)
    unknown = [Utterance(Path(f"/x/{i}.wav"), "folder", "folder:unknown", e, "", Gender.MALE,
                         {}) for i, e in enumerate((Emotion.SAD, Emotion.ANGRY))]
    with pytest.raises(ConfigError, match=r"speakers are unknown: name them with "
                                          r"--speaker-pattern"):
        check_speakers(unknown, Protocol.LOSO)
    check_speakers(unknown, Protocol.LOCO)  # not its business
    two = [Utterance(Path(f"/x/{a}{i}.wav"), "ravdess", f"ravdess:{a}", e, "", Gender.MALE, {})
           for a in ("01", "11") for i, e in enumerate((Emotion.SAD, Emotion.ANGRY))]
    with pytest.raises(ConfigError, match=r"all 2 speakers of the data are on its test side"):
        make_folds(two, Protocol.EMOBOX, n_val_speakers=0)  # 01 and 11 share EmoBox fold 0


def test_an_emotion_with_few_clips_is_warned_about(tmp_path, caplog):
    """One sad clip among many angry and happy ones went unremarked (own-data QA, stop 33)."""
    from emovox.experiment.dataset import FEW_CLIPS, load_dataset

    root = tmp_path / "urdu"
    for spk in ("SM1", "SM2", "SM3"):
        for i in range(FEW_CLIPS):
            make(root, f"Angry/{spk}_F{i}_A01.wav")
            make(root, f"Happy/{spk}_F{i}_H01.wav")
    make(root, "Sad/SM1_F9_S01.wav")
    load_dataset(DataConfig(corpus="urdu", root=str(root)))
    assert "few clips of sad (1): a model learns little of them" in caplog.text
    assert "angry" not in caplog.text and "happy" not in caplog.text


def test_unknown_vocal_channels_are_refused():
    with pytest.raises(ConfigError, match="--train-extra: unknown vocal channel"):
        DataConfig(train_extra=("foo",))
    with pytest.raises(ConfigError, match="--channels: unknown vocal channel"):
        DataConfig(vocal_channels=("speach",))
    assert DataConfig(vocal_channels=("speech", "song")).train_extra == ()


def test_an_ensemble_member_given_twice_or_as_out_is_refused(tmp_path):
    from emovox.experiment.package import ensemble_bundle

    a, b = tmp_path / "a", tmp_path / "b"
    with pytest.raises(ConfigError, match="a member is given twice"):
        ensemble_bundle([a, b, tmp_path / "." / "a"], tmp_path / "out")
    with pytest.raises(ConfigError, match="--out .* is one of the members"):
        ensemble_bundle([a, b], b, force=True)


def test_folders_left_by_killed_runs_are_removed_and_nothing_else(tmp_path):
    dead = 2 ** 22 + 12345  # above Linux's default pid_max
    stale = [tmp_path / f".run.staging-{dead}-ab12cd34", tmp_path / f".run.old-{dead}-00ff",
             tmp_path / f".run.build-{dead}-x_y9"]
    live = tmp_path / f".run.staging-{os.getpid()}-ab12cd34"
    other = tmp_path / f".runs.staging-{dead}-ab12cd34"  # another run's name
    for p in [*stale, live, other]:
        p.mkdir()
        (p / "x").write_text("1")
    afile = tmp_path / f".run.staging-{dead}-eeee"
    afile.write_text("not a folder")
    target = tmp_path / "keep"
    target.mkdir()
    link = tmp_path / f".run.staging-{dead}-1111"
    link.symlink_to(target)
    (tmp_path / "run").mkdir()  # (an old folder while "run" is missing is put back: stop 48)
    assert sorted(remove_stale(tmp_path, "run")) == sorted(stale)
    assert live.is_dir() and other.is_dir() and afile.is_file() and link.is_symlink()
    assert target.is_dir()


@pytest.mark.slow
def test_the_card_and_the_record_say_which_speakers_only_validated(tmp_path, ravdess_maker):
    """A network trained with ``--val-speakers 1`` early-stops on one speaker's clips: its
    model.json ``trained_on`` and its card say which, as written by ``train_bundle``."""
    from emovox.config import SplitConfig
    from emovox.experiment.card import model_card
    from emovox.experiment.package import train_bundle

    root = ravdess_maker(tmp_path / "corpus", (1, 2))  # 16 clips per actor
    cfg = ExperimentConfig(data=DataConfig(root=str(root)),
                           model=ModelConfig("resnet_mlp", {"epochs": 1}),
                           split=SplitConfig(n_val_speakers=1),
                           cache_dir=str(tmp_path / "cache"), n_jobs=1)
    bundle = train_bundle(cfg, tmp_path / "model", onnx=False)
    record = json.loads((tmp_path / "model" / "model.json").read_text())["trained_on"]
    assert record["clips"] == 32 and record["speakers"] == ["ravdess:01", "ravdess:02"]
    (val,) = record["validation_speakers"]
    assert val in record["speakers"] and record["validation_clips"] == 16
    assert (bundle.n_val_speakers, bundle.n_val_clips) == (1, 16)
    said = f"16 clips of 1 speakers ({val}) were used only to choose the epoch"
    assert said in (tmp_path / "model" / "MODEL_CARD.md").read_text()
    assert said in model_card({"trained_on": record})


@pytest.mark.parametrize(("model", "params", "why"), [
    ("prosody_logreg", {"C": 0}, "C must be > 0"),
    ("prosody_logreg", {"max_iter": 0}, "max_iter must be > 0"),
    ("egemaps_svm", {"gamma": -1.0}, "gamma must be > 0, scale or auto"),
    ("compare_lrcv", {"grid": "0,1"}, "grid must hold values of C > 0"),
    ("fusion", {"C": -1.0}, "C must be > 0"),
])
def test_classical_parameters_out_of_range_fail_before_any_work(model, params, why):
    with pytest.raises(ConfigError, match=why):  # re-check, stop 32: failed in sklearn
        validate_params(model, params)


def test_an_ensemble_of_fold_models_keeps_no_member_validation_speakers():
    from types import SimpleNamespace

    from emovox.experiment.members import ensemble_trained_on

    fold = SimpleNamespace(name="crnn_cmvn", experiment_config={}, trained_on=None)
    final = SimpleNamespace(name="ecapa_cmvn", experiment_config={}, trained_on={
        "clips": 9, "validation_speakers": ["a"], "validation_clips": 3, "seconds": 2.0})
    for order in ([(None, fold), (None, final)], [(None, final), (None, fold)]):
        got = ensemble_trained_on(order)  # a fold model records no trained_on (was a crash)
        assert "validation_speakers" not in got and got["members"] == [
            m.name for _, m in order]
        assert "clips" not in got and "seconds" not in got  # unknown, never partial
    other = SimpleNamespace(name="reslstm", experiment_config={}, trained_on={
        "clips": 5, "speakers": ["b"], "corpus": "emovo", "seconds": 1.0})
    a = ensemble_trained_on([(None, final), (None, other)])
    b = ensemble_trained_on([(None, other), (None, final)])
    assert "clip_digests" not in a  # one member records none: no union
    from emovox.artifact.clips import clip_digests, trained_digests

    final.trained_on.update(clip_digests(["a" * 64, "b" * 64]))
    other.trained_on.update(clip_digests(["c" * 64]))  # members on other data: every clip any
    assert trained_digests(ensemble_trained_on([(None, final), (None, other)])) == {
        "a" * 12, "b" * 12, "c" * 12}  # member heard (re-check, stop 35)
    assert "clips" not in a and sorted(a["member_data"]) == sorted(b["member_data"]) == [
        "ecapa_cmvn: 9 clips of 0 speakers (?)", "reslstm: 5 clips of 1 speaker (emovo)"]


def test_an_ensemble_heard_what_every_distilled_member_s_teachers_heard():
    """Each member's ``teacher_speakers`` and teacher digests, not the first member's only
    (research audit, stop 51)."""
    from types import SimpleNamespace

    from emovox.artifact.clips import CLIP_DIGESTS, TEACHER_DIGESTS, clip_digests, trained_digests
    from emovox.experiment.members import ensemble_trained_on

    def member(name, **on):
        return None, SimpleNamespace(name=name, experiment_config={}, trained_on={
            "clips": 4, "speakers": ["ravdess:01"], "corpus": "ravdess", **on})

    plain = member("crnn_cmvn")
    taught = member("ecapa_cmvn", teacher_speakers=["emovo:f1"],
                    **{TEACHER_DIGESTS: clip_digests(["e" * 64])[CLIP_DIGESTS]})
    unlisted = member("reslstm", teacher_speakers=[], teachers_unlisted=["old"])
    assert "teacher_speakers" not in ensemble_trained_on([plain, plain])
    for order in ([plain, taught, unlisted], [unlisted, plain, taught]):
        got = ensemble_trained_on(order)
        assert got["teacher_speakers"] == ["emovo:f1"] and got["teachers_unlisted"] == ["old"]
        assert trained_digests({CLIP_DIGESTS: got[TEACHER_DIGESTS]}) == {"e" * 12}


def test_an_ensemble_of_members_on_other_data_names_their_corpora_and_unseen_emotions():
    """Members trained on two manifests of one's own data: the card said "RAVDESS ... CC
    BY-NC-SA", no "never seen in training" and no own-data line (QA, stop 37)."""
    from types import SimpleNamespace

    from emovox.experiment.card import model_card
    from emovox.experiment.members import ensemble_trained_on

    def member(name, reader, folder, emotions, clips):
        cfg = {"data": {"corpus": reader, "root": f"/data/{folder}", "corpora": []}}
        return None, SimpleNamespace(name=name, experiment_config=cfg, trained_on={
            "clips": clips, "speakers": ["a", "b"], "corpus": reader, "emotions": emotions})

    zero = dict.fromkeys(("calm", "fearful", "disgust", "surprised"), 0)
    a = member("crnn_cmvn", "csv", "own.csv", {"angry": 10, "sad": 5, "neutral": 5,
                                               "happy": 0, **zero}, 20)
    b = member("egemaps_logreg", "folder", "mine", {"angry": 3, "sad": 3, "neutral": 3,
                                                     "happy": 3, **zero}, 12)
    tr = ensemble_trained_on([a, b])
    assert tr["corpora"] == {"csv": 20, "folder": 12} and tr["emotions"]["happy"] == 3
    assert tr["own_data"] == ["csv=own.csv", "folder=mine"]
    card = model_card({"name": "fusion", "trained_on": tr, "labels": ["angry"]})
    assert "RAVDESS" not in card and "csv: see its licence; folder: see its licence" in card
    assert "never seen in training: calm, fearful, disgust, surprised" in card
    assert "own data (reader=name): csv=own.csv, folder=mine" in card
    assert "Trained on csv, folder only" in card
    b[1].trained_on.pop("emotions")  # a member that did not count: no "never seen"
    assert "emotions" not in ensemble_trained_on([a, b])


def test_a_one_value_grid_and_alphanumeric_speaker_order():
    from emovox.experiment.dataset import _natural

    assert validate_params("compare_lrcv", {"grid": 0.5}) == {"grid": (0.5,)}
    with pytest.raises(ConfigError, match="grid must hold values of C > 0"):
        validate_params("compare_lrcv", {"grid": -1})
    ids = ["SM23", "SF10", "SM3", "SF9", "10", "2"]
    assert sorted(ids, key=_natural) == ["2", "10", "SF9", "SF10", "SM3", "SM23"]


@contextmanager
def _live_writer(prefix: Path) -> Iterator[tuple[int, Path]]:
    """A live Python process and its ``PREFIX-PID-ab12cd34`` folder (another emovox writer,
    as :func:`emovox.fileio.live_writers` sees one); killed when the block ends."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = prefix.parent / f"{prefix.name}-{proc.pid}-ab12cd34"
        folder.mkdir()
        yield proc.pid, folder
    finally:
        proc.kill()
        proc.wait()


def test_a_second_run_into_the_same_out_is_refused_while_the_first_writes(tmp_path):
    import subprocess

    from emovox.experiment.rundest import staged_run_dir
    from emovox.experiment.rundir import RunDirError

    with _live_writer(tmp_path / ".run.staging") as (pid, theirs):
        with pytest.raises(RunDirError, match=rf"another emovox process \(PID {pid}\) "
                           "is writing .*run now"):
            with staged_run_dir(tmp_path / "run"):
                pytest.fail("the second run must not start")
        assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]  # ours removed
    with staged_run_dir(tmp_path / "run") as stage:  # the writer died: its folder is stale
        (stage / "metrics.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # a killed run's PID taken by a process that is no emovox writer (a shell's sleep):
    # its folder is stale, not "another emovox process" (QA re-check, stop 34)
    if not Path("/proc/self/cmdline").exists():
        return  # the command line is read on Linux only
    other = subprocess.Popen(["sleep", "60"])
    try:
        import time

        for _ in range(500):  # until it has become `sleep` (a fork still shows pytest's line)
            if Path(f"/proc/{other.pid}/cmdline").read_bytes().startswith(b"sleep"):
                break
            time.sleep(0.01)
        (tmp_path / f".run2.staging-{other.pid}-ab12cd34").mkdir()
        with staged_run_dir(tmp_path / "run2") as stage:
            (stage / "metrics.json").write_text("{}")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run2"]
    finally:
        other.kill()
        other.wait()


def test_a_run_is_staged_before_its_features_are_extracted(tmp_path, monkeypatch):
    from emovox.experiment import runner

    seen = []

    def extraction(*_args, **_kwargs):
        seen.extend(p.name for p in tmp_path.iterdir())
        raise ConfigError("stop here")

    monkeypatch.setattr(runner, "prepare_data", extraction)
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path / "corpus")),
                           model=ModelConfig(name="prosody_logreg"))
    with pytest.raises(ConfigError, match="stop here"):
        runner.run_experiment(cfg, tmp_path / "run")
    assert len(seen) == 1 and seen[0].startswith(".run.staging-"), seen
    assert list(tmp_path.iterdir()) == []  # the staging folder went with the error


def test_a_fused_run_is_checked_run_by_run_against_the_members(tmp_path):
    from emovox.experiment.recipe import UNREADABLE, fused_differences

    def run(name, model, params, corpora=("emovo=/e",)):
        d = tmp_path / name
        d.mkdir()
        ExperimentConfig(data=DataConfig(root="/r", corpora=corpora),
                         model=ModelConfig(model, params)).save_yaml(d / "config.yaml")
        (d / "metrics.json").write_text(json.dumps({"protocol": "emobox", "model": model}))
        return d

    members = [ExperimentConfig(data=DataConfig(root="/r", corpora=("emovo=/e",)),
                                model=ModelConfig(m, {"epochs": 3})).to_dict()
               for m in ("crnn_cmvn", "ecapa_cmvn")]
    same, short = run("a", "crnn_cmvn", {"epochs": 3}), run("b", "ecapa_cmvn", {"epochs": 1})
    other, gone = run("c", "reslstm_logmel", {}), tmp_path / "moved"
    fused = tmp_path / "fused"
    fused.mkdir()
    (fused / "metrics.json").write_text(json.dumps({
        "protocol": "emobox", "model": "fusion(crnn_cmvn+ecapa_cmvn)",
        "fused_runs": [str(same), str(short), str(other), str(gone)]}))
    found = dict(fused_differences(fused, members))
    assert set(found) == {short, other, gone}  # the run of the same recipe passes
    assert found[short] == ["model parameters epochs 1 vs 3"]
    assert found[other] == ["its model reslstm_logmel is none of the members' "
                            "(crnn_cmvn, ecapa_cmvn)"]
    assert found[gone] == ["this run is not there any more"]  # was "could not be read"
    assert fused_differences(same, members) == []  # not a fused run
    assert fused_differences(tmp_path / "nothing", members) == []
    # runs fused as given from the folder `fuse` ran in, checked from another (re-check)
    (fused / "metrics.json").write_text(json.dumps({
        "protocol": "emobox", "model": "fusion(crnn_cmvn+ecapa_cmvn)",
        "fused_runs": ["a", "b"]}))
    assert Path.cwd() != tmp_path and not Path("b").exists()
    assert dict(fused_differences(fused, members)) == {short: ["model parameters epochs 1 vs 3"]}
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "metrics.json").write_text("{")
    (fused / "metrics.json").write_text(json.dumps({
        "protocol": "emobox", "model": "fusion(crnn_cmvn+ecapa_cmvn)", "fused_runs": ["bad"]}))
    assert dict(fused_differences(fused, members))[tmp_path / "bad"][0].startswith(UNREADABLE)


def test_a_classical_models_validation_speakers_are_no_other_recipe(tmp_path):
    """A classical model trains on its validation speakers too (own-data QA, stop 33): its
    CV run's hold-out is not recorded for the card or the recipe check; a network's is, and
    so is compare_lrcv's, which chooses C on them."""
    from emovox.experiment.rundir import read_cv_run

    def run(name, model):
        path = _cv_run(tmp_path / name, model=model)
        ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig(model)).save_yaml(
            path / "config.yaml")  # n_val_speakers 2 by default
        return read_cv_run(path, model).metrics

    assert "val_speakers" not in run("lin", "prosody_logreg")
    assert run("net", "crnn_cmvn")["val_speakers"] == 2
    assert run("lrcv", "compare_lrcv")["val_speakers"] == 2


@pytest.mark.parametrize("protocol", [Protocol.EMOBOX, Protocol.RANDOM])
def test_compare_lrcv_without_validation_is_refused_before_extraction(
        tmp_path, monkeypatch, protocol):
    """It chooses C on validation clips; the random protocol can hold none out (stop 50)."""
    from emovox.config import SplitConfig
    from emovox.experiment import runner

    monkeypatch.setattr(runner, "prepare_data", lambda *a, **k: pytest.fail("extracted"))
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path)), model=ModelConfig(
        name="compare_lrcv"), split=SplitConfig(protocol=protocol, n_val_speakers=0))
    with pytest.raises(ConfigError, match="chooses C on validation speakers"):
        runner.run_experiment(cfg, tmp_path / "run")


def test_emobox_without_ravdess_is_refused_before_extraction(tmp_path, monkeypatch):
    from emovox.experiment import runner
    from emovox.splits import pick_val_speakers

    monkeypatch.setattr(runner, "prepare_data", lambda *a, **k: pytest.fail("extracted"))
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path / "own.csv"), corpus="csv"),
                           model=ModelConfig(name="prosody_logreg"))
    with pytest.raises(FileNotFoundError, match="corpus path not found: .*own.csv"):
        runner.run_experiment(cfg, tmp_path / "run")  # a typo in the path is said first
    (tmp_path / "own.csv").write_text("path,label\n")
    with pytest.raises(ConfigError, match="needs RAVDESS actors .* use --protocol loso"):
        runner.run_experiment(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match="from 2 .* give --val-speakers 1 or fewer"):
        pick_val_speakers(["csv:a", "csv:b"], [], 2, np.random.default_rng(0))


def test_a_manifest_given_as_a_corpus_folder_names_the_csv_reader(tmp_path):
    from emovox.corpora.base import iter_audio_files

    (tmp_path / "own.csv").write_text("path,label\n")
    with pytest.raises(NotADirectoryError, match=r"got a file: .*own\.csv \(a CSV manifest "
                       r"reads with --corpus csv\)"):
        list(iter_audio_files(tmp_path / "own.csv"))
    (tmp_path / "clip.wav").write_bytes(b"RIFF")
    with pytest.raises(NotADirectoryError, match=r"clip\.wav$"):
        list(iter_audio_files(tmp_path / "clip.wav"))


def test_unknown_speakers_are_said_not_counted():
    from emovox.corpora.base import speakers_text
    from emovox.experiment.card import model_card

    assert speakers_text(["csv:a", "csv:b"]) == "2 speakers"
    assert speakers_text(["csv:a"]) == "1 speaker"
    assert speakers_text(["folder:unknown"]) == "speakers unknown"
    assert speakers_text(["csv:a", "csv:unknown"]) == "1 speaker and clips of unknown speakers"
    card = model_card({"trained_on": {"clips": 172, "speakers": ["folder:unknown"],
                                      "corpus": "folder", "channels": ["speech"]}})
    assert "- trained on: 172 clips of speakers unknown (folder" in card


def test_a_cv_run_on_another_manifest_is_another_recipe(tmp_path):
    from emovox.experiment.recipe import recipe_differences

    def cfg(root, corpus="csv"):
        return ExperimentConfig(data=DataConfig(root=root, corpus=corpus),
                                model=ModelConfig("prosody_logreg"))

    run = tmp_path / "run"
    run.mkdir()
    cfg("two_speakers.csv").save_yaml(run / "config.yaml")
    assert recipe_differences(run, cfg("data/good.csv").to_dict()) == [
        "data csv=two_speakers.csv vs csv=good.csv"]
    assert recipe_differences(run, cfg("/elsewhere/two_speakers.csv").to_dict()) == []
    cfg("/a/RAVDESS", "ravdess").save_yaml(run / "config.yaml")  # public corpora: anywhere
    assert recipe_differences(run, cfg("/b/ravdess-copy", "ravdess").to_dict()) == []


def test_a_second_train_into_the_same_out_is_refused_before_any_work(tmp_path, monkeypatch):
    """Two `train --out X` at once both trained, the last to finish replacing the other's
    model (stop 35): the second is refused before reading its data; a dead build's folder
    does not block, and the folders made for the claim go when the train fails."""

    from emovox.experiment import package

    def no_data(_cfg):
        raise ConfigError("data read")

    monkeypatch.setattr(package, "load_dataset", no_data)
    cfg = ExperimentConfig(data=DataConfig(root=str(tmp_path / "corpus")),
                           model=ModelConfig(name="prosody_logreg"))
    with _live_writer(tmp_path / ".model.build") as (pid, theirs):
        with pytest.raises(ConfigError, match=rf"another emovox process \(PID {pid}\) "
                           "is training into .*model now"):
            package.train_bundle(cfg, tmp_path / "model")
        assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]
    with pytest.raises(ConfigError, match="data read"):  # the first died: stale, removed
        package.train_bundle(cfg, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="data read"):
        package.train_bundle(cfg, tmp_path / "new" / "deep" / "model")
    assert list(tmp_path.iterdir()) == []  # the parents made for the claim are gone
    (tmp_path / "afile").write_text("x")  # a file where a folder must be: said in words
    with pytest.raises(NotADirectoryError, match="cannot make the folder .*afile: a file"):
        package.train_bundle(cfg, tmp_path / "afile" / "model")


@pytest.mark.parametrize("mode, whose", [("speaker", "speakers"), ("corpus", "corpus")])
def test_an_adapted_run_calibrates_nothing_and_says_whose_audio(tmp_path, mode, whose):
    from test_switch_member import one_hot_run

    from emovox.experiment.rundir import RunDirError, read_cv_run

    run = one_hot_run(tmp_path, "r", ["angry"] * 4, "m")
    meta = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**meta, "adapt": mode}))
    with pytest.raises(RunDirError, match=f"--adapt {mode} \\(the unlabelled audio of its "
                                          f"test {whose} used\\)"):
        read_cv_run(run, "m")


def test_emotions_a_model_never_heard_get_no_probability(tiny_model, tmp_path):
    """A model trained without some emotions gave them up to 0.13 and, once adapted to a
    speaker, answered them (QA, stop 37): the Predictor gives them 0, in every answer."""
    import shutil

    from emovox.adaptation import adapt, speaker_prior
    from emovox.labels import LABELS
    from emovox.serving.predictor import Predictor
    from signals import SR, voice

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    doc = json.loads((folder / "model.json").read_text())
    heard = {"angry", "sad", "neutral", "happy"}
    doc["trained_on"] = {**(doc.get("trained_on") or {}),
                         "emotions": {lab: 5 if lab in heard else 0 for lab in LABELS}}
    (folder / "model.json").write_text(json.dumps(doc))
    plain = Predictor.from_artifact(tiny_model)
    masked = Predictor.from_artifact(folder)
    assert masked.artifact_meta.unseen_labels() == tuple(
        i for i, lab in enumerate(LABELS) if lab not in heard)
    for wave in (voice(1.0), voice(6.0, f0=240.0)):  # one window, and several
        a, b = plain.predict_wave(wave, SR), masked.predict_wave(wave, SR)
        assert b.label in heard and sum(b.probabilities.values()) == pytest.approx(1.0)
        assert all(b.probabilities[lab] == 0.0 for lab in LABELS if lab not in heard)
        p = np.array([a.probabilities[lab] for lab in LABELS])
        p[[LABELS.index(lab) for lab in LABELS if lab not in heard]] = 0
        assert [b.probabilities[lab] for lab in LABELS] == pytest.approx(p / p.sum())
    q = np.array([[b.probabilities[lab] for lab in LABELS]] * 3)
    adapted = adapt(q[0], speaker_prior(q))
    assert all(adapted[LABELS.index(lab)] == 0 for lab in LABELS if lab not in heard)
    doc["trained_on"]["emotions"].pop("calm")  # a label not counted is not known unseen:
    (folder / "model.json").write_text(json.dumps(doc))  # the zero-counted ones are, as the
    assert Predictor.from_artifact(folder).artifact_meta.unseen_labels() == tuple(  # card says
        i for i, lab in enumerate(LABELS) if lab not in heard | {"calm"})


def test_an_unheard_emotion_that_takes_all_the_mass_leaves_no_nan(tmp_path):
    """Unheard emotions were zeroed after the softmax: at a small temperature one that took
    all the mass left 0 / 0 and the answer was NaN, "ok", exit 0 (code review, stop 47)."""
    import shutil

    from emovox.artifact.paths import packaged_model_path
    from emovox.labels import LABELS
    from emovox.serving.predictor import Predictor
    from signals import SR, voice

    bundled = packaged_model_path("ravdess")  # a trained network: its logits far apart
    folder = tmp_path / "m"
    shutil.copytree(bundled, folder)
    doc = json.loads((folder / "model.json").read_text())
    plain = Predictor.from_artifact(bundled).predict_wave(voice(2.0), SR)
    top = max(plain.probabilities, key=plain.probabilities.get)
    heard = [lab for lab in LABELS if lab != top][-2:]  # the top one never heard
    doc["trained_on"] = {**(doc.get("trained_on") or {}),
                         "emotions": {lab: 5 if lab in heard else 0 for lab in LABELS}}
    doc["calibration"] = {**(doc.get("calibration") or {}), "temperature": 0.001}
    (folder / "model.json").write_text(json.dumps(doc))
    a = Predictor.from_artifact(folder).predict_wave(voice(2.0), SR)
    probs = np.array(list(a.probabilities.values()))
    assert np.isfinite(probs).all() and probs.sum() == pytest.approx(1.0)
    assert a.label in heard and np.isfinite(a.confidence)


@pytest.mark.parametrize("bad", ["nan", "negative", "unnormalised", "blank"])
def test_calibrate_refuses_bad_probabilities_and_writes_nothing(tmp_path, bad):
    """Every probability -0.5 was fitted (T = 20: every answer uncertain after), and a NaN
    was refused without naming the file after the run's metrics had been written into the
    model (QA, stop 38)."""
    from emovox.artifact import save_model
    from emovox.experiment.calibrate import calibrate_bundle
    from emovox.experiment.rundir import Prediction, Predictions, write_predictions
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    model = save_model(m, tmp_path / "model", {"model": {"name": "prosody_logreg"}})
    before = (model / "model.json").read_bytes()
    run = _cv_run(tmp_path / "run")
    p = np.full(len(LABELS), 1 / len(LABELS))
    rows = [Prediction(f"/d/c{i}.wav", "ravdess:01", LABELS[i % 8], LABELS[0], tuple(p), 0,
                       "ravdess") for i in range(16)]
    wrong = {"nan": np.where(np.arange(8) == 0, np.nan, p), "negative": np.full(8, -0.5),
             "unnormalised": p * 2, "blank": p}[bad]
    rows[3] = Prediction("/d/odd.wav", "ravdess:01", "sad", "sad", tuple(wrong), 0, "ravdess")
    write_predictions(run / "predictions.csv", Predictions(list(LABELS), rows))
    want = (r"predictions\.csv: 1 row\(s\) whose probabilities are not finite numbers in "
            r"\[0, 1\] summing to 1 \(first: scored row 4, /d/odd\.wav\)")
    if bad == "blank":  # one cell emptied, no error: the row was dropped as a failed clip
        text = (run / "predictions.csv").read_text().splitlines()
        cells = text[4].split(",")
        cells[7] = ""  # p_happy (after fold, path, speaker, corpus, true, pred, p_neutral)
        text[4] = ",".join(cells)
        (run / "predictions.csv").write_text("\n".join(text) + "\n")
        want = (r"predictions\.csv, line 5: malformed \(could not convert string to float: "
                r"''\)")  # named by its line (stop 39)
    with pytest.raises(ValueError, match=want):
        calibrate_bundle(model, run)
    assert (model / "model.json").read_bytes() == before


def _logreg_model(tmp_path: Path, name: str = "model") -> Path:
    from emovox.artifact import save_model
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    return save_model(m, tmp_path / name, {"model": {"name": "prosody_logreg"}})


def test_calibrate_checks_the_model_files_before_writing(tmp_path):
    """Another model's `model.skops` copied in was refused by `predict`, then `calibrate`
    re-recorded its digest and the folder answered as the other model (QA, stop 40)."""
    from emovox.artifact import ArtifactError, update_artifact
    from emovox.experiment.calibrate import calibrate_bundle

    model = _logreg_model(tmp_path)
    other = tmp_path / "other.skops"
    other.write_bytes((model / "model.skops").read_bytes() + b"\0")
    (model / "model.skops").write_bytes(other.read_bytes())
    before = (model / "model.json").read_bytes()
    with pytest.raises(ArtifactError, match=r"model\.skops: not the file this model\.json was "
                       "written with"):
        calibrate_bundle(model, _cv_run(tmp_path / "run"))
    assert (model / "model.json").read_bytes() == before
    from emovox.artifact import read_meta

    with pytest.raises(ArtifactError, match="not the file"):  # the one writer checks too
        update_artifact(model, read_meta(model))
    assert (model / "model.json").read_bytes() == before
    update_artifact(model, read_meta(model), written=("model.skops",))  # one just written
    assert (model / "model.json").read_bytes() != before


def test_a_calibration_run_given_twice_is_refused(tmp_path):
    """`calibrate M RUN --also RUN` counted its predictions twice and the card printed
    `nan` for the temperature without it (QA, stop 40)."""
    from emovox.experiment.calibrate import calibrate_bundle
    from emovox.experiment.recipe import read_also_runs

    model, run = _logreg_model(tmp_path), _cv_run(tmp_path / "run")
    before = (model / "model.json").read_bytes()
    with pytest.raises(ConfigError, match=r"the run .*run is given twice: give each "
                       "calibration run once"):
        calibrate_bundle(model, run, also=[Path(f"{run}/")])
    assert (model / "model.json").read_bytes() == before
    with pytest.raises(ConfigError, match="given twice"):
        read_also_runs([run, tmp_path / "x" / ".." / "run"], "prosody_logreg")
    rows = ["path,speaker,true,p_sad,p_happy", "a.wav,01,sad,0.700000,0.300000",
            "b.wav,02,happy,0.250000,0.750000"]
    (run / "predictions.csv").write_text("\n".join(rows) + "\n")
    copy = tmp_path / "copy"  # a copy of the run got through (re-checks, stop 40), also
    shutil.copytree(run, copy)  # saved with CRLF, rows reordered, columns swapped, ./a.wav
    with pytest.raises(ConfigError, match=r"the runs .*run and .*copy hold 2 identical "
                       r"prediction\(s\) \(the same clip with the same probabilities"):
        read_also_runs([copy], "prosody_logreg", run)
    resaved = ["path,speaker,true,p_happy,p_sad", "b.wav,02,happy,0.75,0.25",
               "./a.wav,01,sad,0.3,0.7"]
    (copy / "predictions.csv").write_text("\r\n".join(resaved))
    with pytest.raises(ConfigError, match="hold 2 identical"):
        read_also_runs([copy], "prosody_logreg", run)
    other = ["path,speaker,true,p_sad,p_happy", "a.wav,01,sad,0.600000,0.400000",
             "b.wav,02,happy,0.250000,0.750000"]  # another model's run: one clip alike
    (copy / "predictions.csv").write_text("\n".join(other) + "\n")
    with pytest.raises(ConfigError, match="hold 1 identical"):
        read_also_runs([copy], "prosody_logreg", run)
    other[2] = "b.wav,02,happy,0.260000,0.740000"
    (copy / "predictions.csv").write_text("\n".join(other) + "\n")
    assert len(read_also_runs([copy], "prosody_logreg", run)) == 1


def test_the_card_names_what_augmentation_simulated_and_not_member_folders():
    """The channel-augmented `default`'s card called noisy and telephone audio out of domain,
    and a rebuilt ensemble card listed its member folders as training parameters (QA, 40)."""
    from emovox.artifact import read_meta
    from emovox.artifact.paths import default_model_path
    from emovox.experiment.card import model_card

    chan = ("2 augmented copies of each clip: reverb, band-limit, EQ, speed, shift, gain "
            "(-30 to +30 dB), noise (SNR 5-30 dB)")
    from emovox.experiment.card import _domain_line

    plain = _domain_line({"corpora": {"ravdess": 10}})
    assert "children, noisy or telephone audio are out of domain" in plain
    assert "simulated" not in plain
    both = _domain_line({"corpora": {"ravdess": 1, "emovo": 1}, "member_augment": [chan, chan]})
    assert "children are out of domain; noisy, reverberant and telephone audio was " \
        "simulated in training (augmented copies)" in both
    one = _domain_line({"corpora": {"ravdess": 1, "emovo": 1}, "member_augment": [chan, ""]})
    assert "noisy or telephone audio are out of domain" in one and "simulated" not in one
    noise = _domain_line({"corpora": {"ravdess": 1}, "augment": "2 copies: noise (SNR 5-30 dB)"})
    assert "children, telephone audio are out of domain" in noise and "noisy audio was" in noise
    card = model_card(read_meta(default_model_path()).card_view())
    assert card == (default_model_path() / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "training parameters" not in card and "/work/" not in card


def test_calibrate_writes_the_model_whole_or_not_at_all(tmp_path, monkeypatch):
    """Metrics, temperature and card were three writes: a failure after the first left a
    model with the new metrics and the old temperature, and no card (code review, 46)."""
    import emovox.artifact
    from emovox.experiment.calibrate import calibrate_bundle
    from emovox.experiment.rundir import Prediction, Predictions, write_predictions
    from emovox.metrics import compute_metrics

    pooled = compute_metrics(np.arange(16) % 8, np.arange(16) % 8, list(LABELS)).to_dict()
    model, run = _logreg_model(tmp_path), _cv_run(tmp_path / "run", pooled=pooled)
    p = np.full(len(LABELS), 0.05)
    rows = []
    for i in range(16):
        q = p.copy()
        q[i % 8] = 0.65
        rows.append(Prediction(f"/d/c{i}.wav", "ravdess:01", LABELS[i % 8], LABELS[i % 8],
                               tuple(q), 0, "ravdess"))
    write_predictions(run / "predictions.csv", Predictions(list(LABELS), rows))
    before = {f.name: f.read_bytes() for f in model.iterdir()}

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(emovox.artifact, "attach_inference", full_disk)
        with pytest.raises(OSError, match="No space"):
            calibrate_bundle(model, run)
    assert {f.name: f.read_bytes() for f in model.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".model")] == []
    calibrate_bundle(model, run)
    assert (model / "MODEL_CARD.md").is_file() and (model / "model.json").read_bytes() != \
        before["model.json"]


def test_calibrate_refuses_a_folder_holding_a_users_file_before_the_fit(tmp_path):
    """It fitted, then failed "choose another --out", an option calibrate has not (code
    review, stop 46)."""
    from emovox.experiment.calibrate import calibrate_bundle

    model, run = _logreg_model(tmp_path), _cv_run(tmp_path / "run")
    (model / "notes.txt").write_text("mine")
    before = (model / "model.json").read_bytes()
    with pytest.raises(ConfigError, match=r"also holds notes\.txt, which emovox did not "
                       "write; calibrate rewrites the model folder whole: move them out"):
        calibrate_bundle(model, run)
    assert (model / "model.json").read_bytes() == before


def test_a_file_name_that_is_not_utf8_survives_predictions_csv(tmp_path):
    """A Latin-1 file name (an old zip unpacked on Linux) failed `evaluate` when it wrote
    predictions.csv, after every fold had run (code review, stop 47). It is written byte
    for byte and read back as the same path, so rescore and distil find the file."""
    import os

    from emovox.experiment.rundir import (
        Prediction,
        Predictions,
        read_predictions,
        write_predictions,
    )

    name = os.fsdecode(b"anna_col\xe8re.wav")  # '\udce8': not UTF-8
    rows = [Prediction(str(tmp_path / name), "folder:anna", "angry", "angry", (0.75, 0.25), 0,
                       "folder")]
    write_predictions(tmp_path / "predictions.csv", Predictions(["angry", "sad"], rows))
    back = read_predictions(tmp_path / "predictions.csv")
    assert back.rows[0].path == rows[0].path
    assert os.fsencode(back.rows[0].path).endswith(b"col\xe8re.wav")
    import types  # the other reader of predictions.csv (calibrate, train) read it strictly

    from emovox.experiment.recipe import warn_other_clips

    cv = types.SimpleNamespace(predictions=tmp_path / "predictions.csv")
    assert warn_other_clips(tmp_path, cv, trained=["0" * 64], corpora=()) == 0
