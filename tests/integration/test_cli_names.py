"""Names a user types: ``emovox models`` lists the bundled models and the architectures
apart, light (no torch/librosa/sklearn import); an unknown ``--model`` gets "did you mean"
and exit code 2 before anything is loaded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from cli_helpers import invoke, text

from emovox.artifact import BUNDLED_MODELS
from emovox.models import MODELS

SRC = Path(__file__).resolve().parents[2] / "src"


def test_models_lists_bundled_models_then_architectures_without_heavy_imports():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from emovox.cli import app\n"
        "from typer.testing import CliRunner\n"
        "res = CliRunner().invoke(app, ['models'])\n"
        "assert res.exit_code == 0, res.output\n"
        "print(res.output)\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'librosa', "
        "'sklearn'})\n"
        "print('HEAVY', heavy, 'SECONDS', round(time.perf_counter() - t, 2))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200"})
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout, r.stdout[-300:]
    out = " ".join(r.stdout.split())
    bundled_at = out.index("bundled models")
    arch_at = out.index("architectures: evaluate/train --model")
    assert bundled_at < arch_at
    bundled_part, arch_part = out[bundled_at:arch_at], out[arch_at:]
    for name in BUNDLED_MODELS:
        doc = json.loads((Path(str(resources.files("emovox"))) / BUNDLED_MODELS[name]
                          / "model.json").read_text())
        ua = doc["metrics"]["summary"]["ua"]
        assert f"│ {name} │ {doc['name']} │" in bundled_part
        assert f"{ua['mean']:.1f} ± {ua['std']:.1f}" in bundled_part
    arch_lines = r.stdout.split("architectures: evaluate/train --model")[1].splitlines()
    first_cells = {ln.split("│")[1].strip() for ln in arch_lines if ln.startswith("│")} - {""}
    assert first_cells == set(MODELS) and not first_cells & set(BUNDLED_MODELS)
    for name in MODELS:
        assert f"│ {name} │" in arch_part


@pytest.mark.parametrize("command", [
    ["predict", "x.wav"], ["batch", "x.wav", "--out", "r.csv"], ["timeline", "x.wav"],
    ["serve"], ["app"],
])
def test_unknown_bundled_name_suggests_the_close_one(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke([*command, "--model", "acurate"])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert "unknown model 'acurate'" in msg
    assert "Did you mean 'compare' (formerly 'accurate')?" in msg
    assert "Traceback" not in msg and not (tmp_path / "r.csv").exists()
    close_to_new = text(invoke([*command, "--model", "compar"]))
    assert "Did you mean 'compare'?" in close_to_new and "formerly" not in close_to_new


def test_architecture_name_given_to_predict_is_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke(["predict", "x.wav", "--model", "crnn"])
    assert res.exit_code == 2
    assert "'crnn' is an architecture" in text(res) and "(default, compare)" in text(res)
    nothing_close = invoke(["predict", "x.wav", "--model", "zzzz"])
    assert nothing_close.exit_code == 2 and "Did you mean" not in text(nothing_close)


def test_a_model_folder_that_exists_is_not_refused_as_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "acurate").mkdir()  # exists: a folder, whatever its name
    res = invoke(["predict", "x.wav", "--model", "acurate"])
    assert res.exit_code == 2 and "unknown model" not in text(res)
    assert "model.json" in text(res)


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_unknown_architecture_suggests_close_names(command, tmp_path):
    extra = ["--out", str(tmp_path / "m")] if command == "train" else []
    res = invoke([command, "--data", str(tmp_path), "--model", "crn", *extra])
    assert res.exit_code == 2
    msg = text(res)
    assert "unknown architecture 'crn'" in msg and "Did you mean 'crnn'" in msg
    for name in ("default", "compare", "accurate"):
        bundled = invoke([command, "--data", str(tmp_path), "--model", name, *extra])
        assert bundled.exit_code == 2 and f"'{name}' is a bundled trained model" in text(bundled)


# -- the bundled model formerly called `accurate` ------------------------------------------

DEPRECATED = "warning: model name 'accurate' is deprecated: the same model is now called 'compare'"


def test_models_lists_compare_and_notes_accurate_as_a_deprecated_alias():
    res = invoke(["models"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert set(BUNDLED_MODELS) == {"default", "compare"}
    assert re.search(r"│ compare\s*│ compare_lrcv\s*│", res.output)
    assert "│ accurate │" not in res.output
    assert "'accurate' is a deprecated alias of 'compare'" in text(res)


@pytest.mark.parametrize("command", [
    ["predict", "x.wav"], ["timeline", "x.wav"], ["serve"],
])
def test_accurate_is_passed_on_as_compare_with_one_warning(command, tmp_path, monkeypatch):
    """Whatever loads the model gets the current name; the warning is printed once."""
    from emovox.serving.predictor import Predictor

    def refuse(path, **kw):
        raise ValueError(f"loading {path}")

    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(refuse))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.wav").write_bytes(b"RIFF")
    old, new = (text(invoke([*command, "--model", m])) for m in ("accurate", "compare"))
    assert "error: loading compare" in old and "error: loading compare" in new
    assert old.count(DEPRECATED) == 1 and "deprecated" not in new


@pytest.mark.slow  # 11 s: loads openSMILE twice
def test_predict_with_accurate_gives_the_answer_of_compare(tmp_path, monkeypatch):
    import soundfile as sf
    from cli_helpers import SR, tone

    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "tone.wav", tone(1.0), SR)
    new, old = (invoke(["predict", "tone.wav", "--json", "--model", m])
                for m in ("compare", "accurate"))
    assert new.exit_code == 0 and old.exit_code == 0, old.output
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert text(old).count(DEPRECATED) == 1 and "deprecated" not in text(new)


def test_a_folder_named_accurate_wins_over_the_old_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "accurate").mkdir()
    res = invoke(["predict", "x.wav", "--model", "accurate"])
    assert res.exit_code == 2 and "model.json" in text(res) and "deprecated" not in text(res)


# -- scan ------------------------------------------------------------------------------------


def _emodb_tree(root: Path) -> Path:
    for i, stem in enumerate(("03a01Fa", "03a01Wa", "08b02Nb", "10a04Tc", "16b10Ea")):
        p = root / "wav" / f"{stem}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f"RIFF{i}".encode())
    return root


def test_scan_of_an_emodb_tree_with_the_default_reader_suggests_emodb(tmp_path):
    tree = _emodb_tree(tmp_path / "EmoDB")
    res = invoke(["scan", tree])
    assert res.exit_code == 0, res.output
    msg = text(res)
    assert "ravdess: 0 files" in msg
    assert f"emodb reader labels 5 files of 4 speakers: emovox scan {tree} --corpus emodb" in msg
    assert "clips per label" not in msg  # no empty table
    good = invoke(["scan", tree, "--corpus", "emodb"])
    assert good.exit_code == 0 and "5 files (5 labelled" in text(good)
    assert "--corpus" not in text(good)


@pytest.mark.parametrize("command", [
    ["evaluate"], ["train", "--out", "model"], ["evaluate", "--artifact", "bundled"],
])
def test_evaluate_of_an_emodb_tree_with_the_default_reader_suggests_emodb(command, tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    tree = _emodb_tree(tmp_path / "EmoDB")
    res = invoke([*command, "--data", tree])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert (f"error: no labelled clips found under {tree}: the ravdess reader labels no file "
            "there, but the emodb reader labels 5 files of 4 speakers: use --corpus emodb") in msg
    assert "Traceback" not in msg and sorted(p.name for p in tmp_path.iterdir()) == ["EmoDB"]


def test_evaluate_of_a_tree_no_reader_knows_says_how_to_read_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "take07.wav").write_bytes(b"RIFF")
    res = invoke(["evaluate", "--data", tmp_path / "clips"])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert "the ravdess reader labels no file there, nor does any other reader" in msg
    assert "--corpus folder" in msg and "--corpus csv" in msg and "runs" not in os.listdir()


def test_evaluate_whose_filters_leave_nothing_keeps_the_filter_message(tmp_path):
    tree = _emodb_tree(tmp_path / "EmoDB")
    res = invoke(["evaluate", "--data", tree, "--corpus", "emodb", "--speakers", "99"])
    assert res.exit_code == 2
    assert "with these filters" in text(res) and "use --corpus" not in text(res)


def test_scan_prints_its_summary_once(fake_ravdess, tmp_path):
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(fake_ravdess / "Actor_01", tree / "Actor_01")
    clip = tree / "Actor_01" / "03-01-01-01-01-01-01.wav"
    shutil.copy(clip, tree / "Actor_01" / "03-01-01-01-01-02-01.wav")  # a duplicate
    (tree / "Actor_01" / "oops.wav").write_bytes(b"RIFF")  # unrecognised
    res = invoke(["scan", tree])
    assert res.exit_code == 0, res.output
    msg = text(res)
    assert msg.count("ravdess: 16 files") == 1
    assert msg.count("1 group of byte-identical files") == 1 and "1 groups" not in msg
    assert msg.count("skipped 1 unrecognised file,") == 1


def test_scan_still_shows_the_readers_other_warnings(fake_ravdess, monkeypatch):
    import logging

    import emovox.corpora as corpora

    real = corpora.scan_corpus

    def noisy(name, root, **kw):
        logging.getLogger("emovox.corpora.cremad").warning("3 actors not in the demographics")
        return real(name, root, **kw)

    monkeypatch.setattr(corpora, "scan_corpus", noisy)
    res = invoke(["scan", fake_ravdess])
    assert res.exit_code == 0 and "3 actors not in the demographics" in text(res)


def test_scan_of_a_tree_no_reader_knows_says_how_to_read_it(tmp_path):
    for name in ("take07.wav", "interview-3.wav"):
        p = tmp_path / "clips" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"RIFF" + name.encode())
    res = invoke(["scan", tmp_path])
    assert res.exit_code == 0, res.output
    msg = text(res)
    assert "No corpus reader labels a file here" in msg and "--corpus csv" in msg
    assert "--corpus folder" in msg and "(path,label[,speaker])" in msg
    assert "labels no file here, but" not in msg  # no reader to suggest


def test_a_missing_model_path_is_reported_as_a_folder(tmp_path):
    res = invoke(["predict", "x.wav", "--model", tmp_path / "acurate"])
    assert res.exit_code == 2
    assert f"model folder {tmp_path / 'acurate'} does not exist" in text(res)
    assert "Did you mean" not in text(res)
