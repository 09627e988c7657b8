"""Feature cache: corrupt entries are recomputed, files are fsynced, workers die with parent."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from emovox.features.cache import FeatureCache, content_hash, extract_files
from signals import sine, write_clip


@pytest.fixture
def one_wav(tmp_path) -> Path:
    return write_clip(tmp_path / "a.wav", sine(220, 0.5, amp=0.3), subtype=None)


def _extract(wav: Path, cache: Path, name: str = "mfcc"):
    return extract_files([wav], name, {}, cache_dir=cache, n_jobs=1)


def _entry(wav: Path, cache: Path) -> Path:
    files = list((cache / "features").glob(f"*/*/{content_hash(wav)}.npy"))
    assert len(files) == 1
    return files[0]


@pytest.mark.parametrize("damage", ["empty", "nan", "wrong_width", "wrong_ndim", "garbage"])
def test_bad_cache_entry_is_logged_and_recomputed(one_wav, tmp_path, caplog, damage):
    cache = tmp_path / "cache"
    first = _extract(one_wav, cache)
    good = first.features[0]
    assert first.n_cached == 0 and good is not None and good.ndim == 2
    entry = _entry(one_wav, cache)
    if damage == "empty":
        entry.write_bytes(b"")  # used to escape as EOFError ("Aborted." from the CLI)
    elif damage == "nan":
        np.save(entry, np.full_like(good, np.nan))
    elif damage == "wrong_width":
        np.save(entry, good[:, :5])
    elif damage == "wrong_ndim":
        np.save(entry, good.ravel())
    else:
        entry.write_bytes(b"\x93NUMPY garbage")
    with caplog.at_level(logging.WARNING, logger="emovox.features.cache"):
        again = _extract(one_wav, cache)
    assert again.n_cached == 0 and not again.errors
    np.testing.assert_array_equal(again.features[0], good)
    assert str(entry) in caplog.text and "recomputing" in caplog.text
    # the recomputed entry replaced the bad one
    assert _extract(one_wav, cache).n_cached == 1


def test_cache_put_fsyncs_before_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    cache = FeatureCache(tmp_path, "k", ndim=1)  # its key.json, written atomically too
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace",
                        lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    cache.put("ab" * 32, np.ones(4, np.float32))
    assert calls == ["fsync", "replace"] * 2  # shape.json (since stop 48), then the entry
    assert cache.get("ab" * 32) is not None


def test_a_cache_that_cannot_be_written_is_used_without_writing(tmp_path, monkeypatch,
                                                                 caplog):
    """A read-only feature cache made every clip not yet cached an extraction error: whole
    speakers left out of an evaluate run that exited 0 (odd-environment QA, stop 38)."""
    from emovox.features import cache as cache_mod

    def refused(path, **kw):
        raise PermissionError(13, "Permission denied")

    cache = FeatureCache(tmp_path, "k", ndim=1)
    cache.put("ab" * 32, np.ones(4, np.float32))  # cached before the folder became read-only
    monkeypatch.setattr(cache_mod, "atomic_path", refused)
    with caplog.at_level(logging.WARNING):
        for i in range(3):
            cache.put(f"{i:02d}" * 32, np.ones(4, np.float32))  # no exception
    assert caplog.text.count("cannot write the feature cache") == 1
    assert "going on without caching" in caplog.text and cache.unwritable
    assert cache.get("ab" * 32) is not None and cache.get("00" * 32) is None


def test_non_finite_features_are_not_cached(tmp_path):
    cache = FeatureCache(tmp_path, "k", ndim=1)
    cache.put("cd" * 32, np.array([1.0, np.nan], np.float32))
    assert not cache.path("cd" * 32).exists()


def test_cache_remembers_the_feature_width(tmp_path):
    FeatureCache(tmp_path, "k", ndim=2).put("ef" * 32, np.zeros((3, 7), np.float32))
    fresh = FeatureCache(tmp_path, "k", ndim=2)
    assert fresh.dim == 7
    assert fresh.problem(np.zeros((3, 6), np.float32)) is not None
    assert fresh.problem(np.zeros((9, 7), np.float32)) is None  # any length is fine


_POOL_SCRIPT = textwrap.dedent("""
    import sys, time
    from emovox.features.cache import extraction_pool
    use_prctl = sys.argv[1] == "prctl"
    with extraction_pool(2, use_prctl=use_prctl) as pool:
        futs = [pool.submit(time.sleep, 300) for _ in range(2)]
        pids = sorted(pool._processes)
        print(*pids, flush=True)
        time.sleep(300)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", ["prctl", "watchdog"])
def test_extraction_workers_die_with_their_parent(tmp_path, how):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _POOL_SCRIPT, how], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        line = proc.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2 and all(_alive(p) for p in pids), line
        time.sleep(0.3)  # the initializers have run (both workers took a task)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids), f"orphan workers {pids} outlived the parent"
    finally:
        proc.kill()
        for pid in pids if "pids" in locals() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _copy_runner(tmp_path):
    """``run(cfg)``: variant 0 of a voice clip under augmentation ``cfg``, through one cache."""
    from emovox.features.cache import Variant
    from signals import syllables, voice

    wav = write_clip(tmp_path / "v.wav", syllables(voice(1.5)), subtype=None)

    def run(cfg):
        return extract_files([wav], "logmel", {}, cache_dir=tmp_path / "cache", n_jobs=1,
                             variant=Variant(cfg, 0))

    return run


@pytest.mark.skipif(__import__("shutil").which("ffmpeg") is None, reason="needs ffmpeg")
def test_unused_codec_settings_keep_earlier_augmented_caches(tmp_path):
    """The codec step's settings enter the cache key only when it is used: the channel
    recipe's variants keep their cache; channel_codec's copies are other features."""
    from dataclasses import replace

    from emovox.augment import AugmentRecipe, recipe_config

    run, chan = _copy_runner(tmp_path), recipe_config(AugmentRecipe.CHANNEL, 1)
    first = run(chan)
    again = run(replace(chan, codecs=("gsm",)))  # the codec step unused: the same copy
    assert first.n_cached == 0 and again.n_cached == 1
    np.testing.assert_array_equal(first.features[0], again.features[0])
    coded = run(replace(recipe_config(AugmentRecipe.CHANNEL_CODEC, 1), p_codec=1.0))
    assert coded.n_cached == 0 and coded.features[0].shape == first.features[0].shape
    assert not np.allclose(coded.features[0], first.features[0])


def test_telephone_share_enters_the_cache_key_only_away_from_its_first_value(tmp_path):
    """Caches of recipes made before ``telephone_share`` existed stay valid (0.5 was the
    hard-wired share); another share is another copy."""
    from dataclasses import asdict, replace

    from emovox.augment import AugmentRecipe, recipe_config

    run = _copy_runner(tmp_path)
    chan = replace(recipe_config(AugmentRecipe.CHANNEL, 1), p_band=1.0)
    assert asdict(chan)["telephone_share"] == 0.5
    assert run(chan).n_cached == 0 and run(chan).n_cached == 1
    assert run(replace(chan, telephone_share=1.0)).n_cached == 0


def test_the_code_that_makes_the_numbers_is_in_the_key(one_wav, tmp_path, monkeypatch):
    """Cached features of older code were reused: `prosody` changed three times without a
    version bump (audit, stop 31). The key now holds a digest of the features' and the
    decoder's source (and the augmentation's for augmented copies)."""
    import shutil

    import emovox.audio
    import emovox.augment
    import emovox.features
    from emovox.features import cache as cache_mod

    plain, aug = cache_mod.code_digest(), cache_mod.code_digest(augmented=True)
    assert len(plain) == 16 and plain != aug
    # the digest is of the bytes: a copy of the sources reads the same, one changed byte
    # in any covered file gives another (augment.py only for augmented copies)
    copy = tmp_path / "src"
    for pkg in (emovox.features, emovox.audio):
        shutil.copytree(Path(pkg.__file__).parent, copy / Path(pkg.__file__).parent.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        monkeypatch.setattr(pkg, "__file__", str(copy / Path(pkg.__file__).parent.name
                                                 / "__init__.py"))
    shutil.copy(emovox.augment.__file__, copy / "augment.py")
    monkeypatch.setattr(emovox.augment, "__file__", str(copy / "augment.py"))

    def digests() -> tuple[str, str]:
        cache_mod.code_digest.cache_clear()  # it is computed once per process
        return cache_mod.code_digest(), cache_mod.code_digest(augmented=True)

    def edit(path: Path) -> None:
        path.write_bytes(path.read_bytes().replace(b"\n", b" \n", 1))

    try:
        assert digests() == (plain, aug)
        edit(copy / "features" / "prosody.py")
        after_features = digests()
        assert after_features[0] != plain and after_features[1] != aug
        edit(copy / "audio" / "decode.py")
        after_audio = digests()
        assert after_audio[0] != after_features[0] and after_audio[1] != after_features[1]
        edit(copy / "augment.py")
        after_augment = digests()
        assert after_augment[0] == after_audio[0] and after_augment[1] != after_audio[1]
    finally:
        monkeypatch.undo()
        cache_mod.code_digest.cache_clear()  # the real sources' digest again from here
    assert cache_mod.code_digest() == plain
    cache = tmp_path / "cache"
    assert _extract(one_wav, cache).n_cached == 0
    assert _extract(one_wav, cache).n_cached == 1
    monkeypatch.setattr(cache_mod, "code_digest", lambda augmented=False: "0" * 16)
    assert _extract(one_wav, cache).n_cached == 0  # other code: computed afresh


def test_a_silent_clip_is_an_extraction_error_on_every_run(tmp_path):
    """A silent clip labelled neutral was trained and scored as neutral (p 0.999) where
    predict answers no_speech, and said only on the first, uncached run (QA, stop 37)."""
    good = write_clip(tmp_path / "good.wav", sine(220.0, 1.0, amp=0.3))
    silent = write_clip(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    quiet = write_clip(tmp_path / "quiet.wav", sine(220.0, 1.0, amp=0.0005))  # -69 dBFS
    for _ in range(2):  # cached or not: the same errors
        ex = extract_files([good, silent, quiet], "mfcc", cache_dir=tmp_path / "c", n_jobs=1)
        assert sorted(ex.errors) == [1, 2] and ex.features[0] is not None
        assert all("silent (its loudest frame is below -60 dBFS)" in m
                   for m in ex.errors.values())


def test_the_hum_step_enters_the_cache_key_only_when_used(tmp_path):
    """The hum settings enter the key only when the step is used: with ``p_hum`` 0 another
    ``hum_db`` names the same copy (across code versions every key changes anyway)."""
    from dataclasses import replace

    from emovox.augment import AugmentRecipe, recipe_config

    run, chan = _copy_runner(tmp_path), recipe_config(AugmentRecipe.CHANNEL, 1)
    assert run(chan).n_cached == 0
    assert run(replace(chan, hum_db=(-20.0, -5.0))).n_cached == 1  # unused: the same copy
    hummed = run(replace(recipe_config(AugmentRecipe.CHANNEL_HUM, 1), p_hum=1.0))
    assert hummed.n_cached == 0
