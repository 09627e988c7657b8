"""``--adapt speaker`` on fake RAVDESS trees: no information crosses a fold (labels never reach
a normalised feature; a speaker's features ignore other speakers' audio), augmented copies use
their speaker's statistics from the original clips, runs record the mode, ``report`` keeps
adapted rows apart, and the CLI names and refuses what it must."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import yaml

from emovox.augment import AugmentRecipe, recipe_config
from emovox.config import Adapt, DataConfig, ExperimentConfig, ModelConfig, SplitConfig
from emovox.experiment.runner import prepare_data, training_sources
from emovox.models import get_model_spec
from signals import emotion_tone, write_clip

LABEL = "speaker-adapted: uses unlabelled test-speaker audio"


def _cfg(root, cache, model="egemaps_logreg", adapt=Adapt.SPEAKER) -> ExperimentConfig:
    return ExperimentConfig(data=DataConfig(root=str(root)),
                            split=SplitConfig(folds=(0,), n_val_speakers=0),  # two actors:
                            # fold 0 trains on one (a validation speaker is refused before
                            # extraction since stop 53 for a network, as evaluate would)
                            model=ModelConfig(model), cache_dir=str(cache), n_jobs=1, adapt=adapt)


def _by_content(data) -> dict[str, np.ndarray]:
    return dict(zip(data.content_ids, data.feats, strict=True))


@pytest.mark.parametrize("model", ["egemaps_logreg", "crnn"])  # vectors; log-mel frames
def test_labels_never_reach_a_normalised_feature(tmp_path, ravdess_maker, fake_cache, model):
    """Relabel every clip of actor 1 (rename: emotion code 01 <-> 02 ... rotated): the audio is
    the same, the labels differ, and every normalised feature is bit-identical."""
    root = ravdess_maker(tmp_path / "rav", actors=(1, 2))
    spec = get_model_spec(model)
    before = prepare_data(_cfg(root, fake_cache, model), spec)
    for f in sorted((root / "Actor_01").iterdir()):
        parts = f.name.split("-")
        parts[2] = f"{int(parts[2]) % 8 + 1:02d}"
        f.rename(f.with_name("x" + "-".join(parts)))
    for f in sorted((root / "Actor_01").iterdir()):
        f.rename(f.with_name(f.name[1:]))
    after = prepare_data(_cfg(root, fake_cache, model), spec)
    assert sorted(before.y.tolist()) == sorted(after.y.tolist())
    label_of = lambda d: dict(zip(d.content_ids, d.y.tolist(), strict=True))  # noqa: E731
    assert label_of(before) != label_of(after)  # the labels did change
    a, b = _by_content(before), _by_content(after)
    assert set(a) == set(b)
    for cid, x in a.items():
        np.testing.assert_array_equal(x, b[cid])


@pytest.mark.parametrize("model", ["egemaps_logreg", "crnn"])
def test_other_speakers_audio_never_reaches_a_speakers_features(tmp_path, ravdess_maker,
                                                                fake_cache, model):
    root = ravdess_maker(tmp_path / "rav", actors=(1, 2))
    spec = get_model_spec(model)
    before = prepare_data(_cfg(root, fake_cache, model), spec)
    rng = np.random.default_rng(7)
    for f in (root / "Actor_02").iterdir():  # actor 2 now speaks louder and higher
        e = int(f.name.split("-")[2])
        write_clip(f, 3.0 * emotion_tone(e + 3, rng, actor=5, rep=1))
    after = prepare_data(_cfg(root, fake_cache, model), spec)
    spk_a = {c: u.speaker for c, u in zip(before.content_ids, before.utts, strict=True)}
    a, b = _by_content(before), _by_content(after)
    actor1 = [c for c, s in spk_a.items() if s == "ravdess:01"]
    assert len(actor1) == 16
    for cid in actor1:
        np.testing.assert_array_equal(a[cid], b[cid])
    changed = [c for c, s in spk_a.items() if s == "ravdess:02"]
    assert not any(c in b for c in changed)  # actor 2's audio (and features) did change


def test_features_are_zscored_per_speaker(fake_ravdess, fake_cache):
    data = prepare_data(_cfg(fake_ravdess, fake_cache), get_model_spec("egemaps_logreg"))
    spk = np.array([u.speaker for u in data.utts])
    x = np.stack(data.feats)
    for s in set(spk):
        z = x[spk == s]
        np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
        assert np.all((np.abs(z.std(0) - 1.0) < 1e-3) | (z.std(0) < 1e-3))  # floored dims: 0
    assert data.extraction["adapt"]["n_speakers"] == 6
    plain = prepare_data(_cfg(fake_ravdess, fake_cache, adapt=Adapt.NONE),
                         get_model_spec("egemaps_logreg"))
    assert plain.adapter is None and "adapt" not in plain.extraction
    assert not np.allclose(np.stack(plain.feats), x)


def test_augmented_copies_use_their_speakers_statistics_from_the_originals(
    tmp_path, ravdess_maker, fake_cache
):
    root = ravdess_maker(tmp_path / "rav", actors=(1, 2))
    cfg = _cfg(root, fake_cache)
    cfg.augment = recipe_config(AugmentRecipe.CLASSIC, 1)
    spec = get_model_spec("egemaps_logreg")
    data = prepare_data(cfg, spec)
    assert {s[0].n_clips for s in data.adapter.stats.values()} == {16}  # originals only
    idx = np.arange(len(data.utts))
    x_ad, y_ad, _ = training_sources(cfg, spec, data.utts, data.feats, data.y,
                                     data.content_ids, idx, data.adapter)
    raw = prepare_data(_cfg(root, fake_cache, adapt=Adapt.NONE), spec)
    x_raw, _, _ = training_sources(cfg, spec, raw.utts, raw.feats, raw.y, raw.content_ids, idx)
    n = len(idx)
    assert x_ad.shape == x_raw.shape == (2 * n, 88) and len(y_ad) == 2 * n
    np.testing.assert_array_equal(x_ad[:n], np.stack(data.feats))
    expected = np.stack([data.adapter.apply(x_raw[n + j], data.utts[j].speaker)
                         for j in range(n)])
    np.testing.assert_allclose(x_ad[n:], expected, rtol=1e-6)
    assert not np.allclose(x_ad[n:], x_raw[n:])


def _evaluate(root, cache, *extra):
    from typer.testing import CliRunner

    from emovox.cli import app

    return CliRunner().invoke(app, [
        "evaluate", "--data", str(root), "--model", "egemaps_logreg", "--folds", "0",
        "--val-speakers", "1", "--cache-dir", str(cache), "--jobs", "1", *extra,
    ])


def test_evaluate_adapt_end_to_end_and_report_rows(fake_ravdess, fake_cache, tmp_path,
                                                   monkeypatch):
    from typer.testing import CliRunner

    from emovox.cli import app

    monkeypatch.chdir(tmp_path)
    r = _evaluate(fake_ravdess, fake_cache, "--adapt", "speaker")
    assert r.exit_code == 0, r.output
    assert LABEL in " ".join(r.output.split())
    (adapted,) = (tmp_path / "runs").iterdir()
    assert adapted.name.startswith("egemaps_logreg-emobox-adapt-")
    metrics = json.loads((adapted / "metrics.json").read_text())
    assert metrics["adapt"] == "speaker" and metrics["extraction"]["adapt"]["n_speakers"] == 6
    assert metrics["summary"]["ua"]["mean"] > 50  # the fake tones stay learnable
    assert yaml.safe_load((adapted / "config.yaml").read_text())["adapt"] == "speaker"
    r = _evaluate(fake_ravdess, fake_cache, "--out", str(tmp_path / "plain"))
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "plain" / "metrics.json").read_text())["adapt"] == "none"
    r = CliRunner().invoke(app, ["report", str(adapted), str(tmp_path / "plain")])
    assert r.exit_code == 0, r.output
    rows = [line for line in r.output.splitlines() if line.startswith("| `")]
    assert len(rows) == 2
    assert LABEL not in rows[0] and f"emobox ({LABEL})" in rows[1]  # headline row first


def test_report_reads_runs_written_before_the_option(fake_ravdess, fake_cache, tmp_path):
    from emovox.experiment.report import collect_report, markdown_table

    assert _evaluate(fake_ravdess, fake_cache, "--out", str(tmp_path / "old")).exit_code == 0
    m = json.loads((tmp_path / "old" / "metrics.json").read_text())
    del m["adapt"]
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(m))
    rep = collect_report([tmp_path / "old"])
    assert not rep.problems and rep.rows[0].adapt is Adapt.NONE
    assert LABEL not in markdown_table(rep.rows)[2]
    m["adapt"] = "dialect"
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(m))
    assert "malformed" in collect_report([tmp_path / "old"]).problems[0].reason
    # a review, stop 47: a rescored run's row names its speeds (it looked like its source's),
    # and a run listing no folds is malformed (it showed "0" folds beside a mean)
    m["adapt"], m["speeds"] = "none", [0.9, 1.0, 1.1]
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(m))
    assert collect_report([tmp_path / "old"]).rows[0].recipe.endswith("speeds 0.9/1/1.1")
    m["folds"] = []
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(m))
    assert "no folds" in collect_report([tmp_path / "old"]).problems[0].reason


@pytest.mark.parametrize("extra, message", [
    (("--adapt", "speaker", "--protocol", "random"), "needs a speaker-independent protocol"),
    (("--adapt", "speaker", "--artifact", "bundled"), "not to --artifact"),
    (("--adapt", "corpus"), "--adapt corpus needs --protocol loco, not emobox"),
    (("--adapt", "dialect"), "--adapt must be one of: none, speaker, corpus; got 'dialect'"),
])
def test_evaluate_adapt_refusals(fake_ravdess, fake_cache, tmp_path, extra, message):
    r = _evaluate(fake_ravdess, fake_cache, "--out", str(tmp_path / "r"), *extra)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not os.path.exists(tmp_path / "r")
