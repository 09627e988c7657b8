"""Names a user types: ``emovox models`` lists the bundled models and the architectures
apart, light (no torch/librosa/sklearn import); an unknown ``--model`` gets "did you mean"
and exit code 2 before anything is loaded."""

from __future__ import annotations

import json
import os
import shutil
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
    res = invoke([*command, "--model", "defualt"])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert "unknown model 'defualt'" in msg and "Did you mean 'default'?" in msg
    assert "Traceback" not in msg and not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("command", [
    ["predict", "x.wav"], ["batch", "x.wav", "--out", "r.csv"], ["timeline", "x.wav"],
    ["serve"], ["app"],
])
@pytest.mark.parametrize("name", ["compare", "accurate"])
def test_the_retired_compare_model_says_how_to_build_it(command, name, tmp_path, monkeypatch):
    """``compare`` (formerly ``accurate``) is no longer bundled (issue 13: its cold start is
    over 1.5 s and 400 MB): exit 2 with the recipe, before anything is loaded."""
    monkeypatch.chdir(tmp_path)
    res = invoke([*command, "--model", name])
    assert res.exit_code == 2, res.output
    msg = text(res)
    assert f"model '{name}' is no longer bundled" in msg
    assert "--model compare_lrcv" in msg and "Traceback" not in msg
    assert not (tmp_path / "r.csv").exists()


def test_architecture_name_given_to_predict_is_explained(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke(["predict", "x.wav", "--model", "crnn"])
    assert res.exit_code == 2
    assert "'crnn' is an architecture" in text(res) and "(default, ravdess)" in text(res)
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
    bundled = invoke([command, "--data", str(tmp_path), "--model", "default", *extra])
    assert bundled.exit_code == 2 and "'default' is a bundled trained model" in text(bundled)
    for name in ("compare", "accurate"):
        retired = invoke([command, "--data", str(tmp_path), "--model", name, *extra])
        assert retired.exit_code == 2 and f"'{name}' was a bundled trained model" in \
            text(retired)


# -- the retired bundled model `compare` (formerly `accurate`) ------------------------------


def test_models_lists_default_and_says_how_to_build_compare():
    res = invoke(["models"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert set(BUNDLED_MODELS) == {"default", "ravdess"}
    bundled_part = res.output.split("architectures:")[0]
    assert "│ default " in bundled_part and "│ ravdess " in bundled_part
    assert "│ compare " not in bundled_part and "│ accurate " not in bundled_part
    assert "'compare' / 'accurate': no longer bundled" in text(res)
    assert "--model compare_lrcv" in text(res)
    assert "pip install 'emovox[smile]'" in text(res)  # not eaten as rich markup


def test_a_folder_named_compare_wins_over_the_retired_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "compare").mkdir()
    res = invoke(["predict", "x.wav", "--model", "compare"])
    assert res.exit_code == 2 and "model.json" in text(res)
    assert "no longer bundled" not in text(res)


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
    assert res.exit_code == 1, res.output  # nothing labelled (0 before stop 34)
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
    res = invoke(["evaluate", "--data", tree, "--corpus", "emodb", "--speakers", "99",
                  "--protocol", "loso"])  # (emobox without RAVDESS: refused first, stop 33)
    assert res.exit_code == 2
    # the filter is named (since stop 32: the speaker the corpus lacks), not the reader
    assert "--speakers names emodb speaker(s) not in" in text(res) and ": 99 (it has" in text(res)
    assert "use --corpus" not in text(res)


def test_scan_prints_its_summary_once(fake_ravdess, tmp_path):
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
    assert res.exit_code == 1, res.output
    msg = text(res)
    assert "No corpus reader labels a file here" in msg and "--corpus csv" in msg
    assert "--corpus folder" in msg and "(path,label[,speaker])" in msg
    assert "labels no file here, but" not in msg  # no reader to suggest


def test_a_missing_model_path_is_reported_as_a_folder(tmp_path):
    res = invoke(["predict", "x.wav", "--model", tmp_path / "acurate"])
    assert res.exit_code == 2
    assert f"model folder {tmp_path / 'acurate'} does not exist" in text(res)
    assert "Did you mean" not in text(res)


def test_models_of_a_model_shows_its_card(tmp_path):
    """`emovox models DIR` was "Got unexpected extra argument" (own-data QA, stop 33)."""
    from emovox.artifact.paths import default_model_path

    res = invoke(["models", "default"])
    assert res.exit_code == 0, res.output
    card = (default_model_path() / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert res.stdout.strip() == card.strip()  # as it is into a pipe
    folder = tmp_path / "m"
    shutil.copytree(default_model_path(), folder)
    (folder / "MODEL_CARD.md").unlink()
    res = invoke(["models", folder])
    assert res.exit_code == 2 and "has no MODEL_CARD.md" in text(res)
    (folder / "MODEL_CARD.md").symlink_to("/etc/passwd")  # the API's rule: the folder's own
    res = invoke(["models", folder])
    assert res.exit_code == 2 and "outside the model folder" in text(res), text(res)
    for bad in (tmp_path, "defualt"):
        res = invoke(["models", bad])
        assert res.exit_code == 2, res.output
    assert "Did you mean 'default'" in text(res)
    (folder / "MODEL_CARD.md").unlink()  # a folder every answering command refuses: its card
    shutil.copy(default_model_path() / "MODEL_CARD.md", folder)  # was shown (QA, stop 40)
    assert invoke(["models", folder]).exit_code == 0
    doc = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**doc, "format_version": 99}))
    res = invoke(["models", folder])
    assert res.exit_code == 2 and "format_version" in text(res) and "# emovox" not in \
        res.stdout, res.output
    (folder / "model.json").write_text(json.dumps({**doc, "labels": doc["labels"][:7]}))
    res = invoke(["models", folder])  # 7 labels for 8 outputs: loaded as predict loads it
    assert res.exit_code == 2 and "lists 7" in text(res) and "# emovox" not in res.stdout, \
        res.output  # (its card was shown: re-check, stop 40)


def test_the_web_app_refuses_an_empty_host(tmp_path, monkeypatch):
    """`app --host ""` (an unset variable in a script) listened on every interface, where
    `serve` refused it (a review, stop 47)."""
    monkeypatch.chdir(tmp_path)
    res = invoke(["app", "--host", ""])
    assert res.exit_code == 2, res.output
    assert "--host is empty" in text(res) and "Traceback" not in text(res)


def test_batch_starts_no_more_workers_than_chunks_or_cpus(tiny_model, tmp_path, caplog):
    """`batch --workers 100000` started processes without end for one file (a review, stop
    47): at most one per 16 files and per CPU."""
    from emovox.serving.pool import process_rows
    from signals import voice, write_clip

    clip = write_clip(tmp_path / "a.wav", voice(1.0))
    with caplog.at_level("INFO", logger="emovox.serving.pool"):
        rows = list(process_rows([clip], artifact=tiny_model, backend="auto", workers=64,
                                 max_duration=None, fmt="csv"))
    assert len(rows) == 1 and "1 worker processes for 1 chunk(s)" in caplog.text


def test_inference_threads_are_at_most_the_cpus():
    from emovox.serving.runners import cpu_threads

    assert cpu_threads(100_000) == (os.cpu_count() or 1) and cpu_threads(1) == 1


def test_a_local_dask_cluster_has_at_most_a_worker_per_cpu(monkeypatch):
    """`batch --engine dask --workers 1024` started 1024 worker processes on a 2-CPU
    machine (a review, stop 47)."""
    import dask.distributed as dd

    from emovox.serving import dask_engine

    seen = {}

    class FakeCluster:
        def __init__(self, n_workers, **kw):
            seen["n"] = n_workers

    monkeypatch.setattr(dd, "LocalCluster", FakeCluster)
    monkeypatch.setattr(dd, "Client", lambda cluster: "client")
    dask_engine.connect(None, 1024, True)
    assert seen["n"] == (os.cpu_count() or 1)
