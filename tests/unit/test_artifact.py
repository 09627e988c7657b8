"""The artifact format: validation of model.json, the skops allow-list, corrupt files,
``--force`` only over model folders, ``model_id`` over every file, and the one Preprocess
giving identical network input at training and at serving time."""

from __future__ import annotations

import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from emovox.artifact import (
    ALLOWED_TYPES,
    ArtifactError,
    default_model_path,
    load_pipeline,
    read_meta,
    save_model,
    skops_types,
)
from emovox.serving.predictor import Predictor
from emovox.training import build_model

SR = 16000
BUNDLED = default_model_path()  # the crnn (torch + onnx)


def _copy_bundled(tmp_path: Path, src: Path = BUNDLED) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(src, dst)
    return dst


def _tiny_logreg(tmp_path: Path, name: str = "sk") -> Path:
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    return save_model(m, tmp_path / name, {"model": {"name": "prosody_logreg"}})


def _record_digests(folder: Path) -> None:
    """model.json's digests made those of the files now in ``folder``."""
    from emovox.fileio import file_sha256

    doc = json.loads((folder / "model.json").read_text())
    doc["digests"] = {f.name: file_sha256(f) for f in folder.iterdir()
                      if f.name in ("weights.safetensors", "model.onnx", "model.skops")}
    (folder / "model.json").write_text(json.dumps(doc))


# -- model.json validation ----------------------------------------------------------------


def _write_json(folder: Path, doc) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return folder


@pytest.mark.parametrize(("change", "field"), [
    ({"labels": ["happy", "happy", "sad"]}, "labels"),
    ({"labels": ["happy", "bored"]}, "labels"),
    ({"labels": "happy"}, "labels"),
    ({"kind": "pickle"}, "kind"),
    ({"calibration": {"temperature": -1.0}}, "calibration.temperature"),
    ({"calibration": {"temperature": "hot"}}, "calibration.temperature"),
    ({"preprocess": {"sr": "16k"}}, "preprocess"),
    ({"preprocess": {"loudness": "loud"}}, "preprocess"),
    ({"network": {"module": "os.path", "params": {}, "input_shape": [4]}}, "network.module"),
    ({"network": {"module": "emovox.models.mlp", "params": {}, "input_shape": [0]}},
     "network.input_shape"),
    ({"format_version": 99}, "format_version"),
    ({"format": "other"}, "format"),
    # stop 29 QA: each of these loaded and then failed (or answered NaN) on every clip
    ({"calibration": {"temperature": 10 ** 400}}, "calibration.temperature"),
    ({"calibration": {"temperature": 5e-324}}, "calibration.temperature"),
    ({"network": {"module": "emovox.models.nothere", "params": {}, "input_shape": [4]}},
     "network.module"),
    ({"preprocess": {"feature": "os.system"}}, "preprocess"),
    ({"preprocess": {"n_frames": 10 ** 12}}, "preprocess"),
    ({"preprocess": {"sr": 10 ** 12}}, "preprocess"),
])
def test_malformed_fields_name_file_and_field(tmp_path, change, field):
    doc = read_meta(BUNDLED).to_json() | change
    folder = _write_json(tmp_path / "m", doc)
    with pytest.raises(ArtifactError) as err:
        read_meta(folder)
    msg = str(err.value)
    assert "\n" not in msg and str(folder / "model.json") in msg and f"field {field}" in msg


#: model.json of the crnn bundled before the typed format (schema v1), kept to test migration
V1_MODEL_JSON = Path(__file__).resolve().parents[1] / "data" / "v1_crnn_model.json"


def test_v1_bad_temperature_and_duplicate_labels(tmp_path):
    doc = json.loads(V1_MODEL_JSON.read_text())
    _write_json(tmp_path / "a", doc | {"temperature": float("nan")})
    with pytest.raises(ArtifactError, match="calibration.temperature"):
        read_meta(tmp_path / "a")
    dup = ["happy" if lab == "calm" else lab for lab in doc["labels"]]
    _write_json(tmp_path / "b", doc | {"labels": dup})
    with pytest.raises(ArtifactError, match="duplicate label"):
        Predictor.from_artifact(tmp_path / "b")


@pytest.mark.parametrize("edit", [{"train": [1]}, {"train": "x"},
                                  {"train": {"n_frames": "abc"}}])
def test_v1_fields_of_another_type_are_one_line(tmp_path, edit):
    """A version-1 field of another type was an AttributeError / TypeError traceback, or an
    error naming neither file nor field (code review, stop 47)."""
    doc = json.loads(V1_MODEL_JSON.read_text())
    _write_json(tmp_path / "a", doc | edit)
    with pytest.raises(ArtifactError, match=r"model.json: field \(version 1\) cannot be read"):
        read_meta(tmp_path / "a")


def test_v1_bundled_meta_reads_as_v2_and_round_trips(tmp_path):
    meta = read_meta(_write_json(tmp_path / "v1", json.loads(V1_MODEL_JSON.read_text())))
    assert meta.schema_version == 2 and meta.name == "crnn" and meta.network is not None
    assert meta.preprocess.trim is True and meta.preprocess.n_frames == 256
    assert meta.preprocess.top_db == 40.0 and meta.onnx is not None
    again = read_meta(_write_json(tmp_path / "m", meta.to_json()))
    assert again == meta


@pytest.mark.parametrize("doc", [
    "[1, 2, 3]", "[" * 100_000 + "]" * 100_000, "{not json", "",
])
def test_model_json_that_is_not_an_object(tmp_path, doc):
    folder = _write_json(tmp_path / "m", doc)
    with pytest.raises(ArtifactError, match="model.json") as err:
        read_meta(folder)
    assert "\n" not in str(err.value)


def test_model_json_with_a_lone_surrogate_is_no_text(tmp_path):
    """A lone surrogate escape is valid JSON but no text: shown, it broke the web page
    (review, stop 50)."""
    folder = _write_json(tmp_path / "m", json.dumps({"name": "a \ud800 b"}))
    assert "\\ud800" in (folder / "model.json").read_text()
    with pytest.raises(ArtifactError, match="model.json: not valid JSON .*surrogates"):
        read_meta(folder)


# -- corrupt files: one-line error naming the file; exit 2 from the CLI ---------------------


def _truncate(f: Path, n: int = 100) -> None:
    f.write_bytes(f.read_bytes()[:n])


@pytest.mark.parametrize(("src", "name", "damage"), [
    ("default", "weights.safetensors", "truncate"),
    ("default", "weights.safetensors", "garbage"),
    ("default", "model.onnx", "garbage"),
    ("sklearn", "model.skops", "truncate"),
    ("sklearn", "model.skops", "garbage"),
    ("default", "model.json", "list"),
    ("default", "model.json", "nested"),
])
def test_corrupt_artifact_is_one_line_error_and_exit_2(tmp_path, src, name, damage):
    folder = _copy_bundled(tmp_path) if src == "default" else _tiny_logreg(tmp_path)
    f = folder / name
    if damage == "truncate":
        _truncate(f)
    elif damage == "garbage":
        f.write_bytes(b"\x00garbage" * 50)
    elif damage == "list":
        f.write_text("[]")
    else:
        f.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(ArtifactError) as err:
        Predictor.from_artifact(folder, backend="onnx" if name == "model.onnx" else "auto")
    assert str(f) in str(err.value) and "\n" not in str(err.value)

    from emovox.cli import app

    clip = tmp_path / "clip.wav"
    sf.write(clip, 0.1 * np.sin(np.arange(SR) / 10), SR)
    args = ["predict", "--model", str(folder), str(clip)]
    if name == "model.onnx":
        args[1:1] = ["--backend", "onnx"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and name in res.output.replace("\n", "")


@pytest.mark.parametrize("damage", ["labels", "params"])
def test_a_model_whose_parts_disagree_is_refused_at_load(tmp_path, damage):
    """3 labels for an 8-output network, or network sizes its weights do not have (which
    would allocate terabytes when built for real): one line at load, never per clip."""
    folder = _copy_bundled(tmp_path)
    doc = json.loads((folder / "model.json").read_text())
    if damage == "labels":
        doc["labels"] = ["angry", "happy", "sad"]
        # ONNX: at the test window, naming the field (stop 36: NumPy's concatenation
        # message); torch: before building, the same sentence (stop 37: "does not fit")
        want = 'give[s]? 8 outputs but model.json\'s "labels" lists 3'
    else:
        crnn = doc["network"]["params"]["members"][0]["params"]  # the ensemble's CRNN
        crnn["channels"] = [*crnn["channels"][:-1], 10 ** 9]
        want = "does not fit"
    (folder / "model.json").write_text(json.dumps(doc))
    for backend in ("torch", "auto"):
        if damage == "params" and backend == "auto":
            continue  # ONNX never builds the torch network from params
        with pytest.raises(ArtifactError, match=want) as err:
            Predictor.from_artifact(folder, backend=backend)
        assert "\n" not in str(err.value) and str(folder) in str(err.value)


def test_a_tensor_missing_from_the_weights_is_named(tmp_path):
    """A network that needs tensors the weights lack said "None values against 2"
    (QA, stop 37): the tensor is named as missing."""
    folder = _copy_bundled(tmp_path)
    doc = json.loads((folder / "model.json").read_text())
    doc["network"]["params"]["members"][0]["params"]["n_aux"] = 2  # adds an aux input's norm
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"e\.g\. members\.0\.aux\S* is not in "
                                            r"weights\.safetensors\)$"):
        Predictor.from_artifact(folder, backend="torch")


# -- skops allow-list -----------------------------------------------------------------------


def test_allow_list_is_exactly_what_our_pipelines_contain(tmp_path):
    """Every classical model that evaluate/train can write, fitted on random data."""
    import skops.io as sio

    from emovox.models import MODELS, Family

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((48, 6)), np.arange(48) % 8
    seen: set[str] = set()
    for name, spec in MODELS.items():
        if spec.family is not Family.CLASSICAL:
            continue
        m = spec.build(n_classes=8, seed=0)
        m.fit(x[:40], y[:40], x[40:], y[40:])
        f = tmp_path / f"{name}.skops"
        sio.dump(m.pipeline, f)
        seen |= skops_types(f)
        load_pipeline(f)  # our own pipelines load
    assert seen == set(ALLOWED_TYPES)


@pytest.mark.parametrize("fn", ["runstring", "negative"])
def test_skops_with_a_function_transformer_is_refused(tmp_path, fn):
    import numpy.testing._private.utils as npt_utils
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    marker = tmp_path / "pwned"
    code = f"open({str(marker)!r}, 'w').write('x')"
    func = npt_utils.runstring if fn == "runstring" else np.negative
    kw = {"astr": code, "dict": {}} if fn == "runstring" else None
    rng = np.random.default_rng(0)
    lr = LogisticRegression().fit(rng.standard_normal((16, 4)), np.arange(16) % 8)
    pipe = Pipeline([("evil", FunctionTransformer(func, kw_args=kw, validate=False)),
                     ("clf", lr)])
    folder = _tiny_logreg(tmp_path)
    sio.dump(pipe, folder / "model.skops")
    _record_digests(folder)  # as an attacker would: the allow-list must hold on its own
    with pytest.raises(ArtifactError, match="refusing to load types") as err:
        Predictor.from_artifact(folder)
    assert "FunctionTransformer" in str(err.value)
    with pytest.raises(ArtifactError):
        load_pipeline(folder / "model.skops")
    assert not marker.exists()


def test_skops_with_a_bound_method_of_an_allowed_class_is_refused(tmp_path):
    """A `MethodNode` (a StandardScaler's bound `fit`) names only allowed classes: the schema
    walk let it through and only skops's own untrusted list, marked untested, refused it
    (code review, stop 48). Both checks refuse it now."""
    import skops.io as sio

    from emovox.artifact.trust import skops_types

    folder = _tiny_logreg(tmp_path)
    src, dst = folder / "model.skops", tmp_path / "method.skops"
    with zipfile.ZipFile(src) as zin:
        schema = json.loads(zin.read("schema.json"))
        scaler = schema["content"]["content"]["steps"]["content"][0]["content"][1]
        assert scaler["__class__"] == "StandardScaler"
        schema["content"]["content"]["memory_hook"] = {
            "__class__": "StandardScaler", "__module__": "sklearn.preprocessing._data",
            "__loader__": "MethodNode", "content": {"func": "fit", "obj": scaler}}
        with zipfile.ZipFile(dst, "w") as z:
            for i in zin.infolist():
                z.writestr(i, json.dumps(schema) if i.filename == "schema.json"
                           else zin.read(i))
    assert "sklearn.preprocessing._data.StandardScaler.fit" in skops_types(dst)
    assert set(sio.get_untrusted_types(file=dst)) - ALLOWED_TYPES  # the second check's view
    with pytest.raises(ArtifactError, match="refusing to load types.*StandardScaler.fit"):
        load_pipeline(dst)


# -- --force replaces only model folders ----------------------------------------------------


def test_force_refuses_anything_but_a_model_folder(tmp_path):
    from emovox.models.classical import logreg

    rng = np.random.default_rng(0)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 4)), np.arange(16) % 8, [], [])
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_bytes(b"\\documentclass{book} precious")
    plain = tmp_path / "notes.txt"
    plain.write_bytes(b"keep me")
    for target in (thesis, plain):
        with pytest.raises(FileExistsError, match="not an emovox model folder"):
            save_model(m, target, {"model": {"name": "egemaps_logreg"}}, force=True)
    assert (thesis / "thesis.tex").read_bytes() == b"\\documentclass{book} precious"
    assert plain.read_bytes() == b"keep me"
    model = save_model(m, tmp_path / "model", {"model": {"name": "egemaps_logreg"}})
    (model / "MODEL_CARD.md").write_text("a card")  # emovox's own files are replaced, and
    (model / ".model.json.x1y2.tmp").write_text("{")  # the leftovers of its killed writes,
    (model / ".DS_Store").write_bytes(b"\0")  # or a file manager's (QA re-check, stop 38)
    save_model(m, model, {"model": {"name": "egemaps_logreg"}}, force=True)
    assert not (model / "MODEL_CARD.md").exists() and read_meta(model).name == "egemaps_logreg"
    # a user's files kept inside a model folder were deleted with it (QA, stop 38)
    (model / "notes.txt").write_text("mine")
    (model / "recordings").mkdir()
    (model / "recordings" / "clip.flac").write_bytes(b"fLaC")
    before = sorted(p.name for p in model.rglob("*"))
    with pytest.raises(FileExistsError, match="also holds notes.txt, recordings, which "
                                              "emovox did not write"):
        save_model(m, model, {"model": {"name": "prosody_logreg"}}, force=True)
    assert sorted(p.name for p in model.rglob("*")) == before
    assert read_meta(model).name == "egemaps_logreg"


def test_cli_train_force_refuses_a_foreign_folder(tmp_path, fake_ravdess):
    from emovox.cli import app

    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "thesis.tex").write_bytes(b"chapter 1")
    res = CliRunner().invoke(app, ["train", "--data", str(fake_ravdess), "--out", str(thesis),
                                   "--model", "egemaps_logreg", "--force", "--no-onnx"])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "not an emovox model folder" in said
    assert said.count("not an emovox model folder") == 1, said  # said twice (QA, stop 39)
    assert (thesis / "thesis.tex").read_bytes() == b"chapter 1"
    from emovox.models.classical import logreg

    model = save_model(logreg(n_classes=8).fit(np.random.default_rng(0).standard_normal(
        (16, 4)), np.arange(16) % 8, [], []), tmp_path / "m", {"model": {"name": "x"}})
    for given, want in ((model / "model.json", f"a file: give the folder that holds it, "
                                               f"{model}"), (tmp_path / "nope", "no such folder")):
        with pytest.raises(ArtifactError, match=re.escape(f"({want})")):
            read_meta(given)


# -- model_id covers every file -------------------------------------------------------------


def test_a_model_file_other_than_the_one_recorded_is_refused(tmp_path):
    """Another model's model.onnx copied in answered under this folder's name, labels and
    calibration; only the model_id's suffix changed (QA, stop 38): every model file must
    be the one model.json records (digests)."""
    folder = _copy_bundled(tmp_path)
    genuine = Predictor.from_artifact(folder, backend="onnx").model_id
    assert Predictor.from_artifact(folder, backend="torch").model_id == genuine
    shutil.copy(default_model_path().parent / "ravdess_model" / "model.onnx", folder)
    for backend in ("onnx", "torch", "auto"):
        with pytest.raises(ArtifactError, match=r"model\.onnx: not the file this model\.json "
                                                r"was written with") as err:
            Predictor.from_artifact(folder, backend=backend)
        assert "\n" not in str(err.value)
    doc = json.loads((folder / "model.json").read_text())
    del doc["digests"]  # a folder that records none (older writers) still loads
    (folder / "model.json").write_text(json.dumps(doc))
    assert Predictor.from_artifact(folder, backend="torch").model_id != genuine


def test_oversized_model_files_are_refused_before_they_are_read(tmp_path, monkeypatch):
    """A sparse weights file of a few KB on disk declaring a 6 GiB tensor took 12.6 GB of
    memory, a 3 MB skops zip bomb 6.7 GB (QA, stop 38): sizes are checked first."""
    from emovox.artifact import paths

    folder = _copy_bundled(tmp_path)
    with open(folder / "weights.safetensors", "r+b") as fh:
        fh.truncate(paths.MAX_MODEL_FILE_BYTES + 1)  # sparse: nothing written
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: 512 MB, more than the "
                                            r"512 MB a model file may hold"):
        Predictor.from_artifact(folder, backend="torch")
    bomb = tmp_path / "model.skops"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("schema.json", b" " * (2 * 2**20) + b"{}")
    assert bomb.stat().st_size < 2**20
    monkeypatch.setattr(paths, "MAX_MODEL_FILE_BYTES", 2**20)  # the archive fits
    with pytest.raises(ArtifactError, match=r"model\.skops: 2 MB, more than the 1 MB"):
        load_pipeline(bomb)  # what it unpacks to does not


def test_weights_of_another_type_are_refused(tmp_path):
    """int8 weights were cast by load_state_dict and answered 12 % for every class, exit 0
    (QA, stop 38)."""
    from safetensors.numpy import load_file, save_file

    folder = _copy_bundled(tmp_path)
    w = folder / "weights.safetensors"
    tensors = load_file(str(w))
    save_file({k: v.astype(np.int8) if k.startswith("net.") and v.dtype == np.float32 else v
               for k, v in tensors.items()}, str(w))
    _record_digests(folder)  # consistent, but int8
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: net\.\S+ is int8, the "
                                            r"network expects float32 \(\d+ tensor"):
        Predictor.from_artifact(folder, backend="torch")


def test_model_id_covers_skops_and_labels(tmp_path):
    folder = _tiny_logreg(tmp_path)
    first = Predictor.from_artifact(folder).model_id
    other = _tiny_logreg(tmp_path, "sk2")
    from emovox.models.classical import logreg

    rng = np.random.default_rng(1)
    m = logreg(n_classes=8).fit(rng.standard_normal((16, 47)), np.arange(16) % 8, [], [])
    save_model(m, other, {"model": {"name": "prosody_logreg"}}, force=True)
    assert Predictor.from_artifact(other).model_id != first


# -- the one Preprocess: training input == serving input ------------------------------------


def test_training_and_serving_build_identical_network_input(tmp_path, fake_ravdess, fake_cache):
    """resnet_mlp (seed002 vectors): the experiment's extraction + TorchClassifier input vs
    the Predictor's Preprocess on the decoded file: bit-identical."""
    from emovox.config import DataConfig, ExperimentConfig, ModelConfig
    from emovox.experiment.dataset import featurise
    from emovox.features.cache import content_hash
    from emovox.models import get_model_spec

    files = sorted(fake_ravdess.rglob("*.wav"))[:24]
    cfg = ExperimentConfig(data=DataConfig(root=str(fake_ravdess)),
                           model=ModelConfig("resnet_mlp", {"epochs": 1}),
                           cache_dir=str(fake_cache), n_jobs=1)
    spec = get_model_spec("resnet_mlp")
    items, errors, _, _ = featurise(cfg, spec, files, [content_hash(f) for f in files])
    assert not errors
    y = np.arange(len(files)) % 8
    model = build_model(spec, n_classes=8, seed=0, epochs=1)
    model.fit(np.stack(items), y, np.stack(items[:8]), y[:8])
    art = save_model(model, tmp_path / "m", cfg.to_dict())
    pred = Predictor.from_artifact(art)
    from emovox.audio import load_audio

    for i in (0, 5):
        train_input = model.network_input(np.stack([items[i]])).numpy()[0]
        wave = load_audio(files[i], sr=pred.sr).wave
        pre = pred.preprocess
        serve_input = pre.network_input(pre.features(pre.prepare_wave(wave, pred.sr)))
        assert serve_input.dtype == train_input.dtype == np.float32
        assert np.array_equal(serve_input, train_input)


def test_trimmed_wave_and_crnn_input_match_training(tmp_path, fake_ravdess):
    """crnn (trim, logmel, n_frames): the trimmed waveform is identical, and so is the
    network input from the same (librosa) features; the stored NumPy front end differs from
    librosa by <= 1e-3 dB by design (test_inference)."""
    from emovox.audio import load_audio
    from emovox.features import extract
    from emovox.models import crnn
    from emovox.training.trainer import TorchClassifier

    files = sorted(fake_ravdess.rglob("*.wav"))[:16]
    waves = [load_audio(f, sr=SR, trim=True).wave for f in files]  # training-side decode
    feats = [extract("logmel", w, SR) for w in waves]
    y = np.arange(len(files)) % 8
    model = TorchClassifier(crnn.build_net, n_classes=8, seed=0,
                            **{**crnn.DEFAULTS, "n_frames": 48, "epochs": 1})
    model.fit(feats, y, feats[:8], y[:8])
    art = save_model(model, tmp_path / "m", {"model": {"name": "crnn", "params": {}}})
    pre = Predictor.from_artifact(art).preprocess.replace(frontend=None)
    assert pre.trim and pre.n_frames == 48
    for f, w, x in zip(files[:3], waves, feats, strict=False):
        served = pre.prepare_wave(load_audio(f, sr=SR).wave, SR)
        assert np.array_equal(served, w)
        assert np.array_equal(pre.network_input(pre.features(served)),
                              model.network_input([x]).numpy()[0])


def test_importing_artifact_and_serving_is_light():
    import subprocess

    code = ("import sys, emovox.artifact, emovox.preprocess, emovox.serving.predictor; "
            "bad = [m for m in ('torch', 'librosa', 'emovox.training') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- files leading out of the folder (security QA, stop 31) ---------------------------------


def test_a_card_linked_out_of_the_folder_is_not_served(tmp_path, caplog):
    """``GET /v1/model`` served a MODEL_CARD.md linked to /proc/self/environ or /etc/passwd."""
    from emovox.serving.service import model_card

    folder = _copy_bundled(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=do-not-serve")
    card = folder / "MODEL_CARD.md"
    card.unlink(missing_ok=True)
    card.symlink_to(secret)
    with caplog.at_level("WARNING"):
        doc = model_card(Predictor.from_artifact(folder))
    assert doc["model_card_markdown"] is None and "do-not-serve" not in json.dumps(doc)
    assert "leads outside the model folder" in caplog.text
    card.unlink()
    (folder / "notes.md").write_text("# our card")
    card.symlink_to("notes.md")  # a link inside the folder is fine
    assert model_card(Predictor.from_artifact(folder))["model_card_markdown"] == "# our card"


def test_a_hard_linked_card_is_served(tmp_path):
    """Installers hard-link package files from their caches (uv, conda): a card with other
    names is the folder's own (a first re-check fix refused it and the card vanished)."""
    import os

    from emovox.serving.service import model_card

    folder = _copy_bundled(tmp_path)
    cache = tmp_path / "cache-copy.md"
    cache.write_text("# card from the installer's cache")
    (folder / "MODEL_CARD.md").unlink(missing_ok=True)
    os.link(cache, folder / "MODEL_CARD.md")
    assert model_card(Predictor.from_artifact(folder))["model_card_markdown"].startswith("# card")


def test_a_card_swapped_for_a_link_out_while_read_is_not_served(tmp_path, monkeypatch):
    """The check and the open are two steps: a link swapped in between was served (second
    re-check, stop 31). The open file itself is checked (Linux: /proc/self/fd)."""
    import os

    from emovox.artifact import paths

    folder = _copy_bundled(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("API_KEY=do-not-serve")
    card = folder / "MODEL_CARD.md"
    card.write_text("# ours")
    real_open = os.open

    def swap_then_open(path, flags, *a):  # the attacker wins the race every time
        if Path(path) == card:
            card.unlink()
            card.symlink_to(secret)
        return real_open(path, flags, *a)

    monkeypatch.setattr(paths.os, "open", swap_then_open)
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc")
    with pytest.raises(ArtifactError, match="changed while it was read"):
        paths.read_contained_text(folder, "MODEL_CARD.md", 1 << 18)


@pytest.mark.parametrize("name", ["model.json", "weights.safetensors", "model.onnx"])
def test_model_files_may_be_links_into_a_store(tmp_path, name):
    """Parsed files (never echoed) may live elsewhere (a Hugging Face cache, git-annex): only
    the served card must be the folder's own (re-check, stop 31)."""
    folder = _copy_bundled(tmp_path)
    store = tmp_path / "blobs"
    store.mkdir()
    (folder / name).rename(store / name)
    (folder / name).symlink_to(store / name)
    pred = Predictor.from_artifact(folder, backend="onnx" if name == "model.onnx" else "auto")
    assert pred.labels


def test_a_model_name_with_markup_or_escapes_is_printed_as_it_is(tmp_path):
    """A model named "[/bold] ..." crashed predict and serve with rich's MarkupError; ESC
    sequences in a name or card reached the terminal (QA, stop 38)."""
    from emovox.cli import app, render

    folder = _copy_bundled(tmp_path)
    doc = json.loads((folder / "model.json").read_text())
    doc["name"] = "[/bold] [red]x\x1b]0;TITLE\x1b\\"
    (folder / "model.json").write_text(json.dumps(doc))
    clip = tmp_path / "[blink]clip.wav"
    sf.write(clip, 0.1 * np.sin(np.arange(SR) / 10), SR)
    res = CliRunner().invoke(app, ["predict", "--model", str(folder), str(clip)])
    out = "".join(res.output.split())
    assert res.exit_code == 0, res.output
    assert "[/bold][red]x\\x1b]0;TITLE\\x1b\\" in out and "[blink]clip.wav" in out
    assert "\x1b" not in res.output
    assert render.shown("a\x07b[i]\n") == "a\\x07b\\[i]\n"


def test_a_graph_model_json_does_not_record_is_not_used_nor_recorded(tmp_path):
    """A folder without an exported graph (`train --no-onnx`) answered with another model's
    `model.onnx` copied in, under its own name, and `calibrate` then recorded that graph's
    digest as the model's (code review, stop 46)."""
    from emovox.artifact import update_artifact

    folder = _copy_bundled(tmp_path)
    (folder / "model.onnx").unlink()
    update_artifact(folder, read_meta(folder).replace(onnx=None))  # as --no-onnx writes it
    shutil.copy(default_model_path().parent / "ravdess_model" / "model.onnx", folder)
    assert Predictor.from_artifact(folder).backend == "torch"  # auto: not that graph
    with pytest.raises(ArtifactError, match=r"model\.onnx was not exported for this model"):
        Predictor.from_artifact(folder, backend="onnx")
    update_artifact(folder, read_meta(folder))  # what calibrate writes
    assert set(read_meta(folder).digests) == {"weights.safetensors"}


def test_export_replaces_a_damaged_graph(tiny_model, tmp_path):
    """`export` refused to repair the graph its own error told to re-export (code review,
    stop 46)."""
    from emovox.training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    with open(folder / "model.onnx", "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ArtifactError, match="not the file this model.json was written with"):
        Predictor.from_artifact(folder, backend="onnx")
    export_onnx(folder)
    assert Predictor.from_artifact(folder, backend="onnx").backend == "onnx"


def test_the_card_says_what_the_model_reads():
    from emovox.experiment.card import model_card

    card = model_card({"input": {"sr": 16000, "window_s": 5.12, "speeds": [0.9, 1.0, 1.1]}})
    line = next(x for x in card.splitlines() if x.startswith("- Input is"))
    assert "about 5.1 s" in line and "played at 0.9 and 1.1 times its speed" in line
    bundled = model_card(read_meta(BUNDLED).card_view())
    assert "one window of about 2.6 s of speech" in bundled and "times its speed" not in bundled


@pytest.mark.parametrize(("field", "value", "said"), [
    ("speakers", 5, "a list of strs"), ("emotions", [1], "an object of ints"),
    ("corpora", [1], "an object of ints")])
def test_a_hand_edited_trained_on_is_refused_in_one_line(tmp_path, field, value, said):
    """`trained_on.speakers: 5` loaded, then `ensemble` and `calibrate` ended in a traceback
    (code review, stop 46)."""
    folder = tmp_path / "m"
    folder.mkdir()
    doc = json.loads((BUNDLED / "model.json").read_text())
    doc["trained_on"][field] = value
    (folder / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=rf"trained_on\.{field} must be {said}"):
        read_meta(folder)


def _modes(folder: Path) -> dict[str, int]:
    return {".": folder.stat().st_mode & 0o777,
            **{f.name: f.stat().st_mode & 0o777 for f in folder.iterdir()}}


def test_a_private_model_folder_stays_private_when_replaced_or_updated(tiny_model, tmp_path):
    """`calibrate`, `train --force` and `export` made a 0700 folder 0755 and its files 0644
    (code review, stop 48): a replaced folder keeps its bits, a rewritten file its own, a
    new file the folder's without execute."""
    from emovox.artifact import replace_folder, update_artifact
    from emovox.fileio import claimed_folder
    from emovox.training.export import export_onnx

    folder = tmp_path / "m"
    shutil.copytree(tiny_model, folder)
    (folder / "model.onnx").unlink()
    update_artifact(folder, read_meta(folder).replace(onnx=None))
    for f in folder.iterdir():
        f.chmod(0o640 if f.name == "model.json" else 0o600)
    folder.chmod(0o700)
    before = _modes(folder)
    update_artifact(folder, read_meta(folder))  # a rewritten model.json keeps 0640
    assert _modes(folder) == before
    export_onnx(folder)  # a new graph: the folder's bits without execute, as model.json's
    assert _modes(folder) == {**before, "model.onnx": 0o640}
    before = _modes(folder)
    with claimed_folder(folder) as (tmp, _):  # what calibrate does
        stage = tmp / folder.name
        shutil.copytree(folder, stage)
        (stage / "MODEL_CARD.md").write_text("card")
        replace_folder(stage, folder, force=True)
    assert _modes(folder) == {**before, "MODEL_CARD.md": 0o600}


def test_a_new_model_folder_is_readable_by_a_service_account(tmp_path):
    """A new folder is opened to other users on purpose (mkdtemp makes 0700)."""
    folder = _tiny_logreg(tmp_path)
    assert _modes(folder)["."] == 0o755
    assert {m for k, m in _modes(folder).items() if k != "."} == {0o644}
