"""Several corpora end to end on fake trees (RAVDESS, EMOVO and URDU names, learnable tones):
leave-one-corpus-out, EmoBox with extra corpora (CLI), training a model on two corpora."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from emovox.cli import app
from emovox.config import DataConfig, ExperimentConfig, ModelConfig, Protocol, SplitConfig
from emovox.errors import ConfigError
from emovox.experiment import run_experiment
from emovox.labels import LABELS
from extra_trees import make_fake_emovo, make_fake_urdu
from run_variants import another_run

URDU_CLASSES = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def extra(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("extra")
    return make_fake_emovo(root / "emovo"), make_fake_urdu(root / "urdu")


@pytest.fixture(scope="module")
def loco_run(fake_ravdess, fake_cache, extra, tmp_path_factory) -> Path:
    emovo, urdu = extra
    out = tmp_path_factory.mktemp("loco") / "run"
    cfg = ExperimentConfig(
        data=DataConfig(root=str(fake_ravdess), corpora=(f"emovo={emovo}", f"urdu={urdu}")),
        split=SplitConfig(protocol=Protocol.LOCO, n_val_speakers=2),
        model=ModelConfig("egemaps_logreg"), cache_dir=str(fake_cache), n_jobs=1,
    )
    run_experiment(cfg, out)
    return out


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "predictions.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_loco_tests_each_corpus_over_its_own_classes(loco_run):
    m = json.loads((loco_run / "metrics.json").read_text())
    assert m["protocol"] == "loco" and m["speaker_independent"]
    assert m["corpora"] == {"ravdess": 96, "emovo": 42, "urdu": 32}
    assert [f["held_out_corpus"] for f in m["folds"]] == ["ravdess", "emovo", "urdu"]
    assert [f["n_test"] for f in m["folds"]] == [96, 42, 32]
    for f in m["folds"]:  # validation speakers come from the training corpora only
        assert all(not s.startswith(f["held_out_corpus"]) for s in f["val_speakers"])
    pc = m["per_corpus"]
    assert pc["urdu"]["classes"] == URDU_CLASSES
    assert pc["emovo"]["classes"] == [lab for lab in LABELS if lab != "calm"]
    for f in m["folds"]:  # a fold is its corpus: the same UA both ways
        assert f["metrics"]["ua"] == pytest.approx(pc[f["held_out_corpus"]]["ua"])
    # pitch encodes the emotion in every fake corpus: far above chance across corpora
    assert pc["urdu"]["ua"] > 50 and pc["emovo"]["ua"] > 30


def test_loco_predictions_are_restricted_to_the_corpus_classes(loco_run):
    rows = _rows(loco_run)
    assert {r["corpus"] for r in rows} == {"ravdess", "emovo", "urdu"}
    for r in rows:
        assert r["speaker"].startswith(r["corpus"] + ":")
        p = {lab: float(r[f"p_{lab}"]) for lab in LABELS}
        assert sum(p.values()) == pytest.approx(1.0, abs=1e-4)
        if r["corpus"] == "urdu":
            assert all(p[lab] == 0 for lab in LABELS if lab not in URDU_CLASSES)
            assert r["pred"] in URDU_CLASSES
        if r["corpus"] == "emovo":
            assert p["calm"] == 0 and r["pred"] != "calm"


def test_cli_emobox_with_extra_corpora_and_balancing(fake_ravdess, fake_cache, extra, tmp_path):
    emovo, urdu = extra
    out = tmp_path / "run"
    r = CliRunner().invoke(app, [
        "evaluate", "--data", f"ravdess={fake_ravdess}", "--data", f"emovo={emovo}",
        "--data", f"urdu={urdu}", "--protocol", "emobox", "--folds", "0", "--val-speakers",
        "1", "--balance-corpora", "--model", "egemaps_logreg", "--cache-dir", str(fake_cache),
        "--jobs", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["balance_corpora"] is True and list(m["corpora"]) == ["ravdess", "emovo", "urdu"]
    fold = m["folds"][0]
    assert fold["test_speakers"] == ["ravdess:01"]  # EmoBox fold 0 among actors 1-6
    assert all(s.startswith("ravdess:") for s in fold["val_speakers"])
    assert fold["n_train"] == 96 - 16 - 16 + 42 + 32  # extra corpora: training side only
    assert {row["corpus"] for row in _rows(out)} == {"ravdess"}
    assert list(m["per_corpus"]) == ["ravdess"]
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["data"]["corpora"] == [f"emovo={emovo}", f"urdu={urdu}"]
    assert cfg["data"]["balance_corpora"] is True


def test_cli_loco_prints_each_corpus(fake_ravdess, fake_cache, extra, tmp_path):
    emovo, _ = extra
    r = CliRunner().invoke(app, [
        "evaluate", "--data", str(fake_ravdess), "--data", f"emovo={emovo}",
        "--protocol", "loco", "--folds", "1", "--val-speakers", "1", "--model",
        "egemaps_logreg", "--cache-dir", str(fake_cache), "--jobs", "1",
        "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert [f["held_out_corpus"] for f in m["folds"]] == ["emovo"]
    assert "emovo" in r.output


def test_cli_loco_test_only_corpus_is_never_trained_on(fake_ravdess, fake_cache, extra,
                                                        tmp_path):
    """--test-only urdu: the emovo fold trains and validates on RAVDESS alone; the run
    records urdu as test-only."""
    emovo, urdu = extra
    r = CliRunner().invoke(app, [
        "evaluate", "--data", str(fake_ravdess), "--data", f"emovo={emovo}", "--data",
        f"urdu={urdu}", "--protocol", "loco", "--folds", "1", "--val-speakers", "1",
        "--test-only", "urdu", "--model", "egemaps_logreg", "--cache-dir", str(fake_cache),
        "--jobs", "1", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["test_only_corpora"] == ["urdu"]
    (fold,) = m["folds"]
    assert fold["held_out_corpus"] == "emovo"
    assert fold["n_train"] + fold["n_val"] == m["corpora"]["ravdess"]
    assert all(s.startswith("ravdess:") for s in fold["val_speakers"])
    # fusing keeps the record, and the model card says which corpus was only tested
    from emovox.experiment.fuse import fuse_runs
    from emovox.experiment.package import model_card
    from emovox.experiment.rundir import read_cv_run

    another_run(tmp_path / "run", tmp_path / "copy")  # a copy of one run is refused (53)
    fused = fuse_runs([tmp_path / "run", tmp_path / "copy"], tmp_path / "fused")
    assert fused["test_only_corpora"] == ["urdu"]
    cv = read_cv_run(tmp_path / "run", "egemaps_logreg")
    card = " ".join(model_card({"name": "x", "cross_validation": cv.metrics}).split())
    assert "URDU is never trained on" in card
    another_run(tmp_path / "run", tmp_path / "run2")  # another run without the record
    (tmp_path / "run2" / "metrics.json").write_text(json.dumps(
        {k: v for k, v in m.items() if k != "test_only_corpora"}))
    with pytest.raises(ConfigError, match="different test-only"):
        fuse_runs([tmp_path / "run", tmp_path / "run2"], tmp_path / "fused2")


def test_cli_refuses_bad_multi_corpus_input(fake_ravdess, extra, tmp_path):
    emovo, _ = extra
    cases = [
        (["--data", f"emovo={emovo}", "--data", f"emovo={emovo}"], "twice"),
        (["--data", str(fake_ravdess), "--protocol", "loco"], "at least two corpora"),
        (["--data", f"emovo={emovo}", "--data", f"urdu={tmp_path / 'nope'}"], "not found"),
        (["--data", str(fake_ravdess), "--data", f"emovo={emovo}", "--test-only", "emovo"],
         "needs --protocol loco"),
        (["--data", str(fake_ravdess), "--data", f"emovo={emovo}", "--protocol", "loco",
          "--test-only", "nosuch"], "unknown corpus"),
        (["--data", f"emovo={emovo}", "--data", str(fake_ravdess), "--artifact", "bundled"],
         "one --data"),
    ]
    for args, expect in cases:  # --model is refused beside --artifact, even at its default
        model = [] if "--artifact" in args else ["--model", "egemaps_logreg"]
        r = CliRunner().invoke(app, ["evaluate", *args, *model, "--out", str(tmp_path / "run")])
        assert r.exit_code == 2, (args, r.output)
        assert expect in " ".join(r.output.split()), (args, r.output)
    assert not (tmp_path / "run").exists()


def test_train_on_two_corpora_lists_them_in_the_model_card(fake_ravdess, fake_cache, extra,
                                                          tmp_path):
    emovo, _ = extra
    out = tmp_path / "m"
    r = CliRunner().invoke(app, ["train", "--data", f"ravdess={fake_ravdess}", "--data",
                                 f"emovo={emovo}", "--model", "egemaps_logreg",
                                 "--balance-corpora", "--out", str(out), "-j", "1"],
                           env={"EMOVOX_CACHE": str(fake_cache)})
    assert r.exit_code == 0, r.output
    meta = json.loads((out / "model.json").read_text())
    trained = meta["trained_on"]
    assert trained["corpora"] == {"ravdess": 96, "emovo": 42}
    assert trained["corpus"] == "ravdess+emovo" and trained["balance_corpora"] is True
    card = (out / "MODEL_CARD.md").read_text()
    assert "ravdess (96 clips), emovo (42 clips), balanced per corpus" in card
    assert "CC BY-NC-SA 4.0" in card and "EMOVO (Costantini et al., LREC 2014)" in card


def test_loco_calibration_per_corpus_and_fused_run_in_the_card(loco_run, tmp_path):
    """A loco run's temperature comes with ECE per held-out corpus (and with a temperature
    fitted without it); fusing loco runs keeps per-corpus metrics; the card shows both."""
    from emovox.experiment.fuse import fuse_runs
    from emovox.experiment.package import model_card
    from emovox.experiment.rundir import fit_from_predictions_csv, read_cv_run

    rep = fit_from_predictions_csv(loco_run / "predictions.csv")
    pc = rep["per_corpus"]
    assert list(pc) == ["emovo", "ravdess", "urdu"]
    assert sum(r["n"] for r in pc.values()) == rep["n"] == 96 + 42 + 32
    for r in pc.values():
        assert 0 <= r["ece_without"] <= 1 and r["temperature_without"] > 0
    another_run(loco_run, tmp_path / "copy")  # a run or a copy given twice is refused (53)
    fused = fuse_runs([loco_run, tmp_path / "copy"], tmp_path / "fused")
    m = json.loads((loco_run / "metrics.json").read_text())
    for c in ("ravdess", "emovo", "urdu"):  # fused with one answering alike: the same
        assert fused["per_corpus"][c]["ua"] == pytest.approx(m["per_corpus"][c]["ua"], abs=0.1)
        assert fused["per_corpus"][c]["classes"] == m["per_corpus"][c]["classes"]
    cv = read_cv_run(loco_run, "egemaps_logreg")
    card = model_card({"name": "x", "cross_validation": cv.metrics,
                       "calibration": rep, "trained_on": {"corpora": {"ravdess": 1, "emovo": 1}}})
    assert "## Leave-one-corpus-out (corpora never heard)" in card
    assert f"| urdu | 32 | 4 | {m['per_corpus']['urdu']['ua']:.1f} |" in card
    assert f"| emovo | 42 | {pc['emovo']['ece_before']:.3f} |" in card
    assert "RAVDESS: 24 North-American actors" not in card


def test_cli_fuse_and_calibrate_print_each_corpus(loco_run, fake_ravdess, fake_cache, tmp_path):
    another_run(loco_run, tmp_path / "copy")  # a run or a copy given twice is refused (53)
    r = CliRunner().invoke(app, ["fuse", str(loco_run), str(tmp_path / "copy"), "--out",
                                 str(tmp_path / "fused")])
    assert r.exit_code == 0, r.output
    assert "urdu UA" in r.output and "emovo UA" in r.output
    model = tmp_path / "m"
    r = CliRunner().invoke(app, ["train", "--data", str(fake_ravdess), "--model",
                                 "egemaps_logreg", "--out", str(model), "-j", "1"],
                           env={"EMOVOX_CACHE": str(fake_cache)})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["calibrate", str(model), str(loco_run)])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "calibration per test corpus" in out and "urdu" in out
    card = (model / "MODEL_CARD.md").read_text()
    assert "| corpus | clips | ECE raw |" in card


def test_calibration_pools_further_runs_and_the_card_says_so(loco_run):
    """``also``: another run's predictions join the temperature fit; its rows are reported
    as 'corpus (protocol)', and every row of a corpus is left out of its fit "without"."""
    from emovox.experiment.package import model_card
    from emovox.experiment.rundir import fit_from_predictions_csv

    csv_path = loco_run / "predictions.csv"
    one = fit_from_predictions_csv(csv_path)
    rep = fit_from_predictions_csv(csv_path, also=[csv_path])
    assert rep["also"] == [str(csv_path)] and rep["n"] == 2 * one["n"]
    assert list(rep["per_corpus"]) == ["emovo", "emovo (loco)", "ravdess", "ravdess (loco)",
                                       "urdu", "urdu (loco)"]
    for c in ("emovo", "ravdess", "urdu"):  # the same rows twice: the same fit without c
        assert rep["per_corpus"][c]["temperature_without"] == pytest.approx(
            one["per_corpus"][c]["temperature_without"], rel=1e-3)
    card = " ".join(model_card({"name": "x", "calibration": rep}).split())
    assert "pooled with 1 more run of the same recipe" in card
    assert "| urdu (loco) | 32 |" in card


def test_calibrate_also_puts_the_further_run_in_the_card(loco_run, fake_ravdess, fake_cache,
                                                         tmp_path):
    """``calibrate --also RUN``: the further run's headline metrics are kept in model.json
    (``metrics.also``) and shown in the card as 'Also measured', beside the main run."""
    model = tmp_path / "m"
    r = CliRunner().invoke(app, ["train", "--data", str(fake_ravdess), "--model",
                                 "egemaps_logreg", "--out", str(model), "-j", "1"],
                           env={"EMOVOX_CACHE": str(fake_cache)})
    assert r.exit_code == 0, r.output
    again = tmp_path / "again"  # the same run, or a copy, given twice is refused (stop 40):
    shutil.copytree(loco_run, again)  # other probabilities stand for another model's run
    with open(again / "predictions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    probas = [c for c in rows[0] if c.startswith("p_")]
    for row in rows:
        for c in probas:
            row[c] = f"{0.9 * float(row[c]) + 0.1 / len(probas):.6f}"
    with open(again / "predictions.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = CliRunner().invoke(app, ["calibrate", str(model), str(loco_run), "--also",
                                 str(again)])
    assert r.exit_code == 0, r.output
    doc = json.loads((model / "model.json").read_text())
    also = doc["metrics"]["also"]
    m = json.loads((loco_run / "metrics.json").read_text())
    assert [a["protocol"] for a in also] == ["loco"]
    assert also[0]["summary"]["ua"]["mean"] == pytest.approx(m["summary"]["ua"]["mean"])
    card = (model / "MODEL_CARD.md").read_text()
    assert card.count("Leave-one-corpus-out (corpora never heard)") == 2
    assert "## Also measured: Leave-one-corpus-out" in card
    assert "are in the 'Also measured' section below" in card
