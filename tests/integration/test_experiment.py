"""Experiments on the fake RAVDESS tree: multi-input fusion, saved fold models, song rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emovox.config import DataConfig, ExperimentConfig, ModelConfig, Protocol, SplitConfig
from emovox.errors import ConfigError
from emovox.experiment import gather, load_dataset, run_experiment
from emovox.training.trainer import load_trained as load_model
from run_variants import another_run


def cfg_for(root, cache, model: str, **params) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(root=str(root)),
        split=SplitConfig(folds=(0,), n_val_speakers=1),
        model=ModelConfig(model, params),
        cache_dir=str(cache),
        n_jobs=1,
    )


@pytest.mark.slow
@pytest.mark.parametrize("n_val", [1, 0])  # 0: an IndexError on the empty validation set
def test_fusion_runs_two_feature_streams(fake_ravdess, fake_cache, tmp_path, n_val):
    cfg = cfg_for(fake_ravdess, fake_cache, "fusion", epochs=2)
    cfg.split = SplitConfig(folds=(0,), n_val_speakers=n_val)
    res = run_experiment(cfg, tmp_path / "r")
    assert res.extraction["feature"] == "logmel+compare"
    assert res.folds[0].n_test == 16
    assert (tmp_path / "r" / "curves_fold0.png").exists()  # the CRNN member's curves


@pytest.mark.slow
def test_neural_fold_models_are_saved_and_reload(fake_ravdess, fake_cache, tmp_path):
    cfg = cfg_for(fake_ravdess, fake_cache, "crnn", epochs=2)
    cfg.save_models = True
    run_experiment(cfg, tmp_path / "r")
    model, meta = load_model(tmp_path / "r" / "models" / "fold0")
    assert meta.kind.value == "torch" and meta.network.module == "emovox.models.crnn"
    assert meta.network.input_shape == (256, 64)
    hist = json.loads((tmp_path / "r" / "history_fold0.json").read_text())
    assert len(hist["train_loss"]) == 2


def test_training_speaker_ua_is_recorded_beside_validation_ua(fake_ravdess, fake_cache,
                                                               tmp_path):
    """A 1-nearest-neighbour-like model (SVM with a huge C on the fake tree's separable
    tones) fits its training clips: training UA 100, recorded per fold and as a mean."""
    res = run_experiment(cfg_for(fake_ravdess, fake_cache, "egemaps_svm", C=1e6), tmp_path / "r")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert res.folds[0].train_ua == pytest.approx(100.0)
    assert metrics["folds"][0]["train_ua"] == metrics["train_ua_mean"] == pytest.approx(100.0)


def test_song_clips_train_only_and_filters(tmp_path, ravdess_maker):
    root = ravdess_maker(tmp_path / "rav", actors=(1, 2))
    # a song clip (vocal channel 02) for actor 2
    (root / "Actor_02" / "03-02-01-01-01-01-02.wav").write_bytes(
        (root / "Actor_02" / "03-01-01-01-01-01-02.wav").read_bytes()[:-2] + b"\x01\x00"
    )
    ds = load_dataset(DataConfig(root=str(root), train_extra=("song",)))
    assert len(ds.utts) == 33 and ds.train_only.sum() == 1
    only_speech = load_dataset(DataConfig(root=str(root)))
    assert len(only_speech.utts) == 32 and not only_speech.train_only.any()
    assert len(load_dataset(DataConfig(root=str(root), speakers=("1",))).utts) == 16


def test_train_extra_song_without_song_clips_is_said(tmp_path, ravdess_maker, caplog):
    """QA, stop 36: `--train-extra song` on a speech-only folder trained on speech alone,
    without a word."""
    root = ravdess_maker(tmp_path / "rav", actors=(1, 2))
    with caplog.at_level("WARNING"):
        ds = load_dataset(DataConfig(root=str(root), train_extra=("song",)))
    assert not ds.train_only.any()
    assert "--train-extra song: the data hold no song clips" in caplog.text
    caplog.clear()
    (root / "Actor_02" / "03-02-01-01-01-01-02.wav").write_bytes(
        (root / "Actor_02" / "03-01-01-01-01-01-02.wav").read_bytes()[:-2] + b"\x01\x00")
    with caplog.at_level("WARNING"):
        load_dataset(DataConfig(root=str(root), train_extra=("song",)))
    assert "hold no song clips" not in caplog.text
    with pytest.raises(ConfigError, match=r"speaker\(s\) not in .*: 9 \(it has 01, 02\)"):
        load_dataset(DataConfig(root=str(root), speakers=("9",)))


def test_gather_handles_sequences_and_tuples():
    a = [np.zeros((3, 2)), np.zeros((5, 2))]
    assert isinstance(gather(a, np.array([0, 1])), list)
    assert gather([np.zeros(4), np.ones(4)], np.array([1])).shape == (1, 4)
    t = gather([(np.zeros(2), np.ones(3)), (np.zeros(2), np.ones(3))], np.array([0, 1]))
    assert t[0].shape == (2, 2) and t[1].shape == (2, 3)
    # no item of a two-input model: one empty batch per input, not an empty list (QA, stop 36)
    assert gather([(np.zeros(2), np.ones(3))], np.array([], int)) == ([], [])


def test_random_protocol_marks_results_speaker_dependent(fake_ravdess, fake_cache, tmp_path):
    cfg = cfg_for(fake_ravdess, fake_cache, "egemaps_logreg")
    cfg.split = SplitConfig(protocol=Protocol.RANDOM)
    res = run_experiment(cfg, tmp_path / "r")
    d = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert d["speaker_independent"] is False and res.folds[0].n_test == 20  # 20 % of 96


def fold_parts(root, cache, out, *, n_val_speakers: int) -> list:
    """Folds 0 and 1 of ``egemaps_logreg`` as two part runs ``out/f0``, ``out/f1``."""
    parts = []
    for k in (0, 1):
        cfg = cfg_for(root, cache, "egemaps_logreg")
        cfg.split = SplitConfig(folds=(k,), n_val_speakers=n_val_speakers)
        run_experiment(cfg, out / f"f{k}")
        parts.append(out / f"f{k}")
    return parts


def test_split_seed_keeps_the_random_protocol_s_test_clips_across_model_seeds(
        fake_ravdess, fake_cache, tmp_path):
    """`--seed` alone also redraws the random protocol's test clips (runs then cannot be
    fused); `--split-seed` fixes the split while the model's seed varies."""
    import csv

    from typer.testing import CliRunner

    from emovox.cli import app

    def run(name: str, *args: str):
        r = CliRunner().invoke(app, ["evaluate", "--data", str(fake_ravdess), "--protocol",
                                     "random", "--model", "egemaps_logreg", "-j", "1",
                                     "--out", str(tmp_path / name), *args],
                               env={"EMOVOX_CACHE": str(fake_cache)})
        assert r.exit_code == 0, r.output
        with open(tmp_path / name / "predictions.csv") as f:
            return {row["path"] for row in csv.DictReader(f)}

    base, same, other = run("s0"), run("s1", "--seed", "1", "--split-seed", "0"), run(
        "s1_alone", "--seed", "1")
    assert base == same and base != other and len(base) == len(other) == 20
    fuse = ["fuse", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "f")]
    r = CliRunner().invoke(app, fuse)  # a logistic regression reads no seed: the same
    assert r.exit_code == 2 and "hold the same predictions" in " ".join(r.output.split())
    another_run(tmp_path / "s1", tmp_path / "s1b")  # answers, refused as a copy (stop 53);
    fuse[2] = str(tmp_path / "s1b")  # a model whose seed matters fuses: the same clips
    r = CliRunner().invoke(app, fuse)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*fuse[:2], str(tmp_path / "s1_alone"), "--out",
                                 str(tmp_path / "bad")])
    assert r.exit_code == 2 and "other test clips" in r.output


def test_merge_takes_parts_written_before_a_config_key_existed(fake_ravdess, fake_cache,
                                                              tmp_path):
    """A part written before ``split.seed`` (or ``augment.p_eq``) existed merges with one that
    has it at its default: the same recipe; a part with another split seed is refused."""
    import yaml

    from emovox.experiment.fuse import merge_runs

    parts = fold_parts(fake_ravdess, fake_cache, tmp_path, n_val_speakers=1)
    path = parts[0] / "config.yaml"
    old = yaml.safe_load(path.read_text())
    assert "seed" in old["split"] and old["split"]["seed"] is None
    del old["split"]["seed"]
    del old["augment"]["p_eq"]  # at its default (0.0): a part from before the setting
    old["save_models"] = True  # and one that kept its models, its data read from another
    old["data"]["root"] = "../elsewhere/" + "/".join(Path(old["data"]["root"]).parts[-2:])
    path.write_text(yaml.safe_dump(old))  # mount point (both refused until stop 46)
    merge_runs(parts, tmp_path / "merged")
    old["split"]["seed"] = 3
    old["adapt"] = "corpus"
    path.write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match=r"another configuration than .* \(adapt, split.seed\)"):
        merge_runs(parts, tmp_path / "refused")  # the settings that differ are named (stop 36)


def test_corpus_assembled_from_symlinked_folders(tmp_path, ravdess_maker):
    real = ravdess_maker(tmp_path / "real", actors=(3,))
    (tmp_path / "view").mkdir()
    (tmp_path / "view" / "speech").symlink_to(real, target_is_directory=True)
    (tmp_path / "view" / "loop").symlink_to(tmp_path / "view", target_is_directory=True)
    ds = load_dataset(DataConfig(root=str(tmp_path / "view")))
    assert len(ds.utts) == 16  # followed the link once, not around the loop


@pytest.mark.slow
def test_fuse_runs_averages_out_of_fold_probabilities(fake_ravdess, fake_cache, tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    runs = []
    for model in ("egemaps_logreg", "egemaps_svm"):
        cfg = cfg_for(fake_ravdess, fake_cache, model)
        cfg.split = SplitConfig(folds=(0, 1), n_val_speakers=1)
        run_experiment(cfg, tmp_path / model)
        runs.append(tmp_path / model)
    r = CliRunner().invoke(app, ["fuse", *map(str, runs), "--out", str(tmp_path / "f"),
                                 "--weights", "3,1"])
    assert r.exit_code == 0, r.output
    fused = json.loads((tmp_path / "f" / "metrics.json").read_text())
    assert fused["weights"] == [.75, .25]  # weighted: not the equal-weight ensemble (46)
    assert fused["model"] == "fusion(egemaps_logreg*0.75+egemaps_svm*0.25)"
    import csv

    def probs(run):
        with open(run / "predictions.csv") as f:
            return {(r["fold"], r["path"]): float(r["p_happy"]) for r in csv.DictReader(f)}

    a, b, f = probs(runs[0]), probs(runs[1]), probs(tmp_path / "f")
    assert set(a) == set(f) and len(f) == 32
    for k in f:
        assert f[k] == pytest.approx(0.75 * a[k] + 0.25 * b[k], abs=2e-6)
    # the same clips written as other paths (a run started elsewhere) still line up
    moved = tmp_path / "moved"
    shutil.copytree(runs[1], moved)
    text = (moved / "predictions.csv").read_text()
    (moved / "predictions.csv").write_text(text.replace(str(fake_ravdess), "../elsewhere/rav"))
    assert "../elsewhere/rav" in (moved / "predictions.csv").read_text()
    r = CliRunner().invoke(app, ["fuse", str(runs[0]), str(moved), "--out",
                                 str(tmp_path / "f2"), "--weights", "3,1"])
    assert r.exit_code == 0, r.output
    assert probs(tmp_path / "f2") == probs(tmp_path / "f")
    # runs over different clips cannot be fused
    cfg = cfg_for(fake_ravdess, fake_cache, "egemaps_logreg")
    run_experiment(cfg, tmp_path / "one_fold")
    r = CliRunner().invoke(app, ["fuse", str(runs[0]), str(tmp_path / "one_fold"),
                                 "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "other test clips" in r.output
    # the same clips labelled otherwise (an edited manifest): the figures depended on the
    # order the runs were given in; a run of two folds of three kept its protocol size
    relabelled = tmp_path / "relabelled"  # (code review, stop 46)
    shutil.copytree(runs[1], relabelled)
    rows = (relabelled / "predictions.csv").read_text().splitlines()
    cells = rows[1].split(",")
    cells[4] = "calm" if cells[4] != "calm" else "sad"
    (relabelled / "predictions.csv").write_text("\n".join([rows[0], ",".join(cells),
                                                           *rows[2:]]) + "\n")
    r = CliRunner().invoke(app, ["fuse", str(runs[0]), str(relabelled), "--out",
                                 str(tmp_path / "bad2")])
    assert r.exit_code == 2 and "label" in r.output and "differently" in r.output
    assert json.loads((tmp_path / "f" / "metrics.json").read_text())["protocol_folds"] == \
        json.loads((runs[0] / "metrics.json").read_text())["protocol_folds"] == 5


def test_fuse_and_merge_tell_clips_apart_by_their_folders(fake_ravdess, fake_cache, tmp_path):
    """A folder per emotion holds ``angry/anna_1.wav`` and ``sad/anna_1.wav``: fuse and merge
    refused such runs, "two test clips named anna_1.wav" (QA, stop 37)."""
    import csv
    from pathlib import Path

    from emovox.experiment.fuse import fuse_runs, merge_runs

    def as_emotion_folders(run: Path) -> None:
        with open(run / "predictions.csv") as f:
            rows = list(csv.DictReader(f))
        for r in rows:  # 03-01-EE-II-SS-RR-AA -> EE/AA_SSRRII.wav: names repeat across EE
            m, c, e, i, s, rep, a = Path(r["path"]).stem.split("-")
            r["path"] = f"/data/mine/{e}/{a}_{s}{rep}{i}.wav"
        with open(run / "predictions.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        assert len({Path(r["path"]).name for r in rows}) < len(rows)

    runs = []
    for k, model in enumerate(("egemaps_logreg", "egemaps_svm", "egemaps_logreg")):
        cfg = cfg_for(fake_ravdess, fake_cache, model)
        cfg.split = SplitConfig(folds=(0, 1) if k < 2 else (0,), n_val_speakers=1)
        run_experiment(cfg, tmp_path / f"r{k}")
        as_emotion_folders(tmp_path / f"r{k}")
        runs.append(tmp_path / f"r{k}")
    for k, run in enumerate(runs):  # the files a part could not read stay listed (stop 37)
        (run / "errors.csv").write_text(f"path,error\n/data/mine/bad{k % 2}.wav,not audio\n")
    fused = fuse_runs(runs[:2], tmp_path / "f")
    assert fused["pooled"]["n"] == 32
    assert (tmp_path / "f" / "errors.csv").read_text().splitlines() == [
        "path,error", "/data/mine/bad0.wav,not audio", "/data/mine/bad1.wav,not audio"]
    cfg = cfg_for(fake_ravdess, fake_cache, "egemaps_logreg")
    cfg.split = SplitConfig(folds=(1,), n_val_speakers=1)
    run_experiment(cfg, tmp_path / "r3")
    as_emotion_folders(tmp_path / "r3")
    (tmp_path / "r3" / "errors.csv").write_text("path,error\n/data/mine/bad0.wav,not audio\n")
    merged = merge_runs([runs[2], tmp_path / "r3"], tmp_path / "m")
    assert (tmp_path / "m" / "errors.csv").read_text().splitlines() == [
        "path,error", "/data/mine/bad0.wav,not audio"]
    assert merged["pooled"] == json.loads((runs[0] / "metrics.json").read_text())["pooled"]


def test_merged_single_fold_runs_equal_one_run_over_both_folds(fake_ravdess, fake_cache,
                                                                 tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    def run(folds, name, **params):
        cfg = cfg_for(fake_ravdess, fake_cache, "egemaps_logreg", **params)
        cfg.split = SplitConfig(folds=folds, n_val_speakers=1)
        run_experiment(cfg, tmp_path / name)
        return tmp_path / name

    both, f0, f1 = run((0, 1), "both"), run((0,), "f0"), run((1,), "f1")
    r = CliRunner().invoke(app, ["merge", str(f0), str(f1), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    want = json.loads((both / "metrics.json").read_text())
    got = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert got["summary"] == want["summary"] and got["pooled"] == want["pooled"]
    assert [f["index"] for f in got["folds"]] == [0, 1]
    assert got["train_ua_mean"] == pytest.approx(want["train_ua_mean"])
    # where it was computed is recorded, and kept by the merge (the same machine here)
    from emovox.provenance import environment

    assert want["environment"] == got["environment"] == environment()
    assert (tmp_path / "m" / "predictions.csv").read_text().count("\n") == (
        both / "predictions.csv").read_text().count("\n")
    # the same fold twice, or another configuration, is refused
    r = CliRunner().invoke(app, ["merge", str(f0), str(both), "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "share fold(s) " in r.output
    other = run((1,), "f1C", C=0.01)
    r = CliRunner().invoke(app, ["merge", str(f0), str(other), "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "another configuration" in r.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_merged_runs_without_validation_speakers_report_no_validation_ua(
        fake_ravdess, fake_cache, tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    parts = fold_parts(fake_ravdess, fake_cache, tmp_path, n_val_speakers=0)
    # a part written before the trainer kept an empty validation history stored the last
    # epoch's index as its "validation UA"
    m = json.loads((parts[0] / "metrics.json").read_text())
    m["folds"][0]["val_ua"] = 29.0
    (parts[0] / "metrics.json").write_text(json.dumps(m))
    r = CliRunner().invoke(app, ["merge", *map(str, parts), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert got["val_ua_mean"] is None and all(f["val_ua"] is None for f in got["folds"])
    assert got["train_ua_mean"] is not None


def test_validated_c_is_chosen_on_validation_speakers_only():
    from sklearn.metrics import balanced_accuracy_score

    from emovox.models.classical import logreg, logreg_cv

    rng = np.random.default_rng(0)
    y = np.arange(160) % 8
    # weak class signal in 50 dimensions: the largest C fits the training rows best
    # (100 %) but generalises worst, so the two ways of choosing C disagree
    x = rng.normal(0, 1, (160, 50)) + np.eye(8)[y] @ rng.normal(0, 0.4, (8, 50))
    grid = (1e-3, 1e-2, 1.0)
    train_ua, val_ua = {}, {}
    for c in grid:  # each C fitted on the training rows alone, scored on both sides
        ref = logreg(n_classes=8, C=c)
        ref.pipeline.fit(x[:96], y[:96])
        train_ua[c] = 100 * balanced_accuracy_score(y[:96], ref.predict_proba(x[:96]).argmax(1))
        val_ua[c] = 100 * balanced_accuracy_score(y[96:128],
                                                  ref.predict_proba(x[96:128]).argmax(1))
    best_val = max(grid, key=lambda c: (val_ua[c], -c))
    assert best_val != max(grid, key=lambda c: (train_ua[c], -c))  # the data tells them apart
    m = logreg_cv(n_classes=8, grid=grid)
    m.fit(x[:96], y[:96], x[96:128], y[96:128])
    assert m.val_ua == pytest.approx(val_ua)
    assert m.chosen_C == best_val
    assert m.predict_proba(x[128:]).shape == (32, 8)
    with pytest.raises(ValueError, match="validation"):
        logreg_cv(n_classes=8).fit(x[:96], y[:96], x[:0], y[:0])


# ----------------------------------------------------------------- run directories


def _evaluate(root, cache, out, *extra):
    from typer.testing import CliRunner

    from emovox.cli import app

    return CliRunner().invoke(app, [
        "evaluate", "--data", str(root), "--model", "egemaps_logreg", "--folds", "0",
        "--val-speakers", "1", "--cache-dir", str(cache), "--jobs", "1", "--out", str(out),
        *extra,
    ])


@pytest.mark.slow
def test_evaluate_out_replaces_an_earlier_run_without_stale_files(
    fake_ravdess, fake_cache, tmp_path
):
    out = tmp_path / "run"
    r = _evaluate(fake_ravdess, fake_cache, out)
    assert r.exit_code == 0, r.output
    (out / "curves_fold7.png").write_bytes(b"stale")
    (out / "errors.csv").write_text("path,error\nold.wav,old\n")
    r = _evaluate(fake_ravdess, fake_cache, out, "--folds", "1")
    assert r.exit_code == 0, r.output
    assert not (out / "curves_fold7.png").exists() and not (out / "errors.csv").exists()
    assert [f["index"] for f in json.loads((out / "metrics.json").read_text())["folds"]] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left behind


def test_evaluate_out_refuses_a_folder_that_is_not_a_run(fake_ravdess, fake_cache, tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_text("\\documentclass{book}")
    r = _evaluate(fake_ravdess, fake_cache, thesis)
    assert r.exit_code == 2 and "not an emovox run folder" in r.output
    assert [p.name for p in thesis.iterdir()] == ["thesis.tex"]
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    r = _evaluate(fake_ravdess, fake_cache, a_file)
    assert r.exit_code == 2 and "not a folder" in r.output and a_file.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "thesis"]


def test_failed_run_leaves_the_earlier_run_untouched(tmp_path):
    from emovox.experiment.rundest import staged_run_dir

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"protocol": "emobox"}')
    (out / "predictions.csv").write_text("")  # what every run folder holds (stop 53)
    with pytest.raises(RuntimeError), staged_run_dir(out) as stage:
        (stage / "metrics.json").write_text('{"protocol": "half"}')
        raise RuntimeError("fold 3 crashed")
    assert json.loads((out / "metrics.json").read_text()) == {"protocol": "emobox"}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


@pytest.mark.slow
def test_report_skips_a_truncated_run_and_tabulates_the_rest(fake_ravdess, fake_cache, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from emovox.cli import app

    good = tmp_path / "good"
    assert _evaluate(fake_ravdess, fake_cache, good, "--folds", "0,1").exit_code == 0
    bad = tmp_path / "bad"
    shutil.copytree(good, bad)
    text = (bad / "metrics.json").read_text()
    (bad / "metrics.json").write_text(text[: len(text) // 2])
    r = CliRunner().invoke(app, ["report", str(bad), str(good), str(tmp_path / "missing")])
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    assert "| model | protocol | folds |" in r.output
    rows = [ln for ln in r.output.splitlines() if ln.startswith("| `egemaps_logreg`")]
    # 2 of the 5 EmoBox folds that hold test actors among these 6 (since stop 34: "of 5")
    assert len(rows) == 1 and rows[0].startswith("| `egemaps_logreg` | emobox | 2 of 5 |")
    assert rows[0].endswith(f"| `{good}` · ravdess |")  # which run (research QA, stop 32)
    assert f"skipping {bad / 'metrics.json'}: unreadable" in r.output
    assert "missing: no such folder" in r.output  # not "no metrics.json" (QA, stop 39)


def test_report_of_nothing_readable_fails_instead_of_printing_an_empty_table(tmp_path):
    from typer.testing import CliRunner

    from emovox.cli import app

    (tmp_path / "notes").mkdir()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "notes"), str(tmp_path / "missing")])
    assert r.exit_code == 1, r.output
    assert "no run directory could be read (2 skipped)" in r.output
    assert "| model |" not in r.output and "Traceback" not in r.output


def test_predictions_csv_round_trip_and_old_layouts(tmp_path):
    import csv

    from emovox.experiment.rundir import (
        Prediction,
        Predictions,
        read_predictions,
        read_probabilities,
        write_predictions,
    )
    from emovox.labels import LABELS

    p = np.full(len(LABELS), 1 / len(LABELS))
    preds = Predictions(list(LABELS), [
        Prediction("a.wav", "ravdess:01", "happy", "happy", tuple(p), fold=0, corpus="ravdess"),
        Prediction("b.wav", "ravdess:02", "sad", fold=1, corpus="ravdess", error="unreadable"),
    ])
    write_predictions(tmp_path / "predictions.csv", preds)
    header = (tmp_path / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["fold", "path", "speaker", "corpus", "true", "pred"]
    assert header[6:-1] == [f"p_{lab}" for lab in LABELS] and header[-1] == "error"
    back = read_predictions(tmp_path)
    assert back.labels == list(LABELS) and back.rows[1].proba is None
    assert back.rows[0] == Prediction("a.wav", "ravdess:01", "happy", "happy",
                                      tuple(round(v, 6) for v in p), 0, "ravdess", "")
    probs, y = read_probabilities(tmp_path / "predictions.csv")
    assert probs.shape == (1, len(LABELS)) and y.tolist() == [LABELS.index("happy")]
    # the layout evaluate wrote before this schema (no corpus, no error column)
    old = tmp_path / "old.csv"
    with open(old, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["fold", "path", "speaker", "true", "pred", *[f"p_{lab}" for lab in LABELS]])
        w.writerow([2, "c.wav", "ravdess:03", "angry", "angry", *[f"{v:.6f}" for v in p]])
    row = read_predictions(old).rows[0]
    assert row.fold == 2 and row.corpus == "" and row.error == "" and row.true == "angry"
    with pytest.raises(ValueError, match="missing column.*p_unknown_label"):
        read_probabilities(old, labels=["sad", "unknown_label"])


def test_fusing_a_speaker_adapted_run_makes_an_adapted_run(fake_ravdess, fake_cache, tmp_path):
    """A fusion with one speaker-adapted member used unlabelled test-speaker audio: it must
    be recorded (and reported) as adapted, never as a speaker-independent headline."""
    from emovox.experiment.fuse import fuse_runs
    from emovox.experiment.report import collect_report, markdown_table

    plain = tmp_path / "plain"
    run_experiment(cfg_for(fake_ravdess, fake_cache, "egemaps_logreg"), plain)
    adapted = another_run(plain, tmp_path / "adapted")  # not a copy: refused (stop 53)
    meta = json.loads((adapted / "metrics.json").read_text())
    meta["adapt"] = "speaker"
    (adapted / "metrics.json").write_text(json.dumps(meta))

    another_run(plain, tmp_path / "copy")  # a copy of one run is refused (stop 53)
    assert fuse_runs([plain, tmp_path / "copy"], tmp_path / "f0")["adapt"] == "none"
    assert fuse_runs([plain, adapted], tmp_path / "f1")["adapt"] == "speaker"
    rep = collect_report([tmp_path / "f1", tmp_path / "f0"])
    assert [r.adapt.value for r in rep.rows] == ["speaker", "none"] and not rep.problems
    table = markdown_table(rep.rows)
    assert "speaker-adapted" not in table[2] and "speaker-adapted" in table[3]


@pytest.mark.slow
def test_the_adversary_gets_each_training_clip_s_speaker(fake_ravdess, fake_cache, tmp_path,
                                                         fits):
    for w in (1.0, 0.0):
        res = run_experiment(cfg_for(fake_ravdess, fake_cache, "ecapa_cmvn", epochs=1,
                                     channels=16, adversary=w), tmp_path / f"r{w}")
    fold = res.folds[0]
    data = cfg_for(fake_ravdess, fake_cache, "crnn").data
    everyone = {u.speaker for u in load_dataset(data).utts}
    training = everyone - set(fold.test_speakers) - set(fold.val_speakers)
    (n, speakers, unlabelled), (_, none, _) = fits
    assert len(speakers) == n == fold.n_train and set(speakers) == training
    assert unlabelled is None  # not an adapted run: no test clip reaches training
    assert none is None  # without an adversary the trainer is not given them


@pytest.mark.slow
def test_train_gives_the_adversary_the_speakers_of_its_clips(fake_ravdess, fake_cache, tmp_path,
                                                             fits, monkeypatch):
    from typer.testing import CliRunner

    from emovox.cli import app

    monkeypatch.setenv("EMOVOX_CACHE", str(fake_cache))
    out = tmp_path / "model"
    args = ["train", "--data", str(fake_ravdess), "--model", "ecapa_cmvn", "--out", str(out),
            "--no-onnx", "--jobs", "1", "--val-speakers", "1"]
    for p in ("epochs=1", "channels=16", "adversary=0.5", "threads=1"):
        args += ["-p", p]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    (n, speakers, _), = fits
    assert len(speakers) == n and len(set(speakers)) == 5  # 6 actors, 1 for validation
    assert json.loads((out / "model.json").read_text())["network"]["train"]["adversary"] == 0.5
