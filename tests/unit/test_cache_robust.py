"""Feature cache and extraction under failure (code review, stop 48): a killed worker is no
file's error, the key's code digest and library versions are those of the code in memory,
side and temporary files are written and swept safely, and a research clip has a length
limit."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import AudioTooLong
from emovox.features import cache as cache_mod
from emovox.features.cache import FeatureCache, extract_files
from signals import sine, write_clip

ROOT = Path(__file__).resolve().parents[2]

#: the real extraction, called by the stand-ins below in the worker processes
_REAL_EXTRACT = cache_mod._extract_one


def _dies_once(*args):
    """In a worker: kill this process (as the out-of-memory killer does) the first time any
    worker gets here, then extract as usual."""
    if os.getpid() != int(os.environ["EMOVOX_TEST_PARENT"]):
        try:
            fd = os.open(os.environ["EMOVOX_TEST_MARK"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    return _REAL_EXTRACT(*args)


def _always_dies(*args):
    if os.getpid() != int(os.environ["EMOVOX_TEST_PARENT"]):
        os.kill(os.getpid(), signal.SIGKILL)
    return _REAL_EXTRACT(*args)


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    return [write_clip(tmp_path / "clips" / f"c{i}.wav", sine(200.0 + 30 * i, 0.4, amp=0.3))
            for i in range(6)]


@pytest.fixture
def killer_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOVOX_TEST_PARENT", str(os.getpid()))
    monkeypatch.setenv("EMOVOX_TEST_MARK", str(tmp_path / "killed-once"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_killed_worker_is_restarted_not_a_file_error(clips, tmp_path, monkeypatch,
                                                       killer_env, caplog):
    """One worker killed: every queued clip was recorded as a BrokenProcessPool "error" and
    the run went on with a subset."""
    # in this process first (the forked workers find librosa imported)
    fresh = extract_files(clips, "mfcc", cache_dir=tmp_path / "other", n_jobs=1)
    monkeypatch.setattr(cache_mod, "_extract_one", _dies_once)
    with caplog.at_level(logging.WARNING):
        ex = extract_files(clips, "mfcc", cache_dir=tmp_path / "cache", n_jobs=2)
    assert (tmp_path / "killed-once").exists()  # a worker did die
    assert ex.errors == {} and all(f is not None for f in ex.features)
    assert "an extraction worker process died" in caplog.text  # (a restart only when clips
    for a, b in zip(ex.features, fresh.features, strict=True):  # were left unstarted)
        np.testing.assert_array_equal(a, b)


def _init_dies(*args):
    """A worker that dies before it takes a clip (no clip to blame: memory)."""
    os._exit(1)


def _kills_on_c3(path, *args):
    """In a worker: a clip that always kills the process extracting it (a native crash)."""
    if os.getpid() != int(os.environ["EMOVOX_TEST_PARENT"]) and Path(path).name == "c3.wav":
        os._exit(1)
    return _REAL_EXTRACT(path, *args)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_pool_that_keeps_breaking_stops_extraction(clips, tmp_path, monkeypatch,
                                                     killer_env):
    from emovox.features import workers
    from emovox.features.workers import POOL_RESTARTS, WorkersDied

    monkeypatch.setattr(workers, "_worker_init", _init_dies)
    with pytest.raises(WorkersDied, match=f"died {POOL_RESTARTS + 1} times") as err:
        extract_files(clips, "mfcc", cache_dir=tmp_path / "cache", n_jobs=2)
    assert "6 of 6 clip(s) are not extracted" in str(err.value)
    assert err.value.culprits == ()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_a_clip_that_kills_its_worker_is_named(clips, tmp_path, monkeypatch, killer_env,
                                               caplog):
    """A clip that kills every worker extracting it broke each pool the same way and the
    run stopped blaming memory, naming no clip (code review): it is named, the rest done."""
    from emovox.features.workers import WorkersDied

    monkeypatch.setattr(cache_mod, "_extract_one", _kills_on_c3)
    with pytest.raises(WorkersDied) as err:
        extract_files(clips, "mfcc", cache_dir=tmp_path / "cache", n_jobs=2)
    message = str(err.value)
    assert err.value.culprits == (str(clips[3]),)
    assert str(clips[3]) in message and "Remove these files" in message
    assert "died 3 times" not in message and "starting the pool again" not in caplog.text
    for other in (0, 1, 2, 4, 5):
        assert str(clips[other]) not in message
    monkeypatch.setattr(cache_mod, "_extract_one", _REAL_EXTRACT)  # the others are cached
    rest = [c for c in clips if c.name != "c3.wav"]
    assert extract_files(rest, "mfcc", cache_dir=tmp_path / "cache", n_jobs=1).n_cached == 5


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_every_clip_killing_its_worker_points_at_the_installation(clips, tmp_path,
                                                                  monkeypatch, killer_env):
    from emovox.features.workers import WorkersDied

    monkeypatch.setattr(cache_mod, "_extract_one", _always_dies)
    with pytest.raises(WorkersDied, match="suspect the installation") as err:
        extract_files(clips, "mfcc", cache_dir=tmp_path / "cache", n_jobs=2)
    assert err.value.culprits == tuple(str(c) for c in clips)


def _slow_death(i):
    """In a worker: a task that kills its process after a while (every worker of a pool then
    holds one when the first dies)."""
    if os.getpid() != int(os.environ["EMOVOX_TEST_PARENT"]):
        time.sleep(1.0)
        os._exit(1)
    return i


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forked workers")
def test_no_more_culprits_are_named_than_the_limit(monkeypatch, killer_env):
    """The limit was checked only before each pool: one break tried every clip in hand
    (one per worker), naming up to MAX_CULPRITS - 1 + n_jobs (code review)."""
    from emovox.features import workers

    monkeypatch.setattr(workers, "MAX_CULPRITS", 2)
    done = []
    with pytest.raises(workers.WorkersDied) as err:
        workers.run_in_pool(_slow_death, {i: (i,) for i in range(12)}, 4,
                            lambda i, fut: done.append(i), name=lambda i: f"clip{i}")
    assert len(err.value.culprits) == 2 and done == []
    assert "10 clip(s) were not tried" in str(err.value)  # the rest in hand among them


def test_a_worker_refuses_other_code_than_its_parents(clips, tmp_path, monkeypatch):
    """A worker started by spawn or a fork server imports emovox again: an edit since the
    parent started must not be cached under the parent's key."""
    from emovox.features import workers
    from emovox.features.codekey import FINGERPRINT

    monkeypatch.setattr(workers, "_PARENT", {})
    workers._worker_init(None, False, FINGERPRINT)
    assert workers._checked(len, "ab") == 2
    other = {**FINGERPRINT, "code": "0" * 16}
    workers._worker_init(None, False, other)
    with pytest.raises(workers.CodeChanged, match="code: 0000000000000000 here"):
        workers._checked(len, "ab")
    # through extract_files: the run stops (no per-file errors)
    monkeypatch.setattr(workers, "_PARENT", {})
    monkeypatch.setattr(workers, "extraction_pool",
                        partial(workers.extraction_pool, fingerprint=other))
    with pytest.raises(workers.CodeChanged):
        extract_files(clips, "mfcc", cache_dir=tmp_path / "cache", n_jobs=2)


_DIGEST_SCRIPT = textwrap.dedent("""
    import json, shutil, sys
    from pathlib import Path
    import emovox.features.cache as c            # a run imports it at start-up
    import emovox.features as f
    print("emovox.augment" in sys.modules, "emovox.features.vad" in sys.modules)
    tmp = Path(sys.argv[1])
    copy = tmp / "features"                      # the source changes before extraction
    shutil.copytree(Path(f.__file__).parent, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    p = copy / "prosody.py"
    p.write_text(p.read_text() + "\\n# an edit\\n")
    real = f.__file__
    f.__file__ = str(copy / "__init__.py")
    c.extract_files([Path(sys.argv[2])], "mfcc", cache_dir=tmp / "cache", n_jobs=1)
    (key,) = tmp.glob("cache/features/*/key.json")
    f.__file__ = real
    c.code_digest.cache_clear()
    print(json.loads(key.read_text())["code"], c.code_digest())
""")


def test_the_code_digest_is_taken_at_import(tmp_path):
    """It was read at the first extraction: an edit or a git pull after the run started put
    the old code's numbers under the new code's key (a copy of the sources stands for the
    files on disk here)."""
    clip = write_clip(tmp_path / "a.wav", sine(220.0, 0.4, amp=0.3))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT, str(tmp_path), str(clip)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    imported, digests = done.stdout.splitlines()
    in_the_key, of_the_code_in_memory = digests.split()
    assert in_the_key == of_the_code_in_memory
    assert imported == "True True"  # what the digest covers is in memory


def test_library_versions_are_in_the_key(clips, tmp_path, monkeypatch):
    from emovox.features.codekey import FEATURE_PACKAGES
    from emovox.provenance import PACKAGES

    assert set(FEATURE_PACKAGES) <= set(PACKAGES)
    cache = tmp_path / "cache"
    assert extract_files(clips[:1], "mfcc", cache_dir=cache, n_jobs=1).n_cached == 0
    assert extract_files(clips[:1], "mfcc", cache_dir=cache, n_jobs=1).n_cached == 1
    (key,) = [json.loads(p.read_text()) for p in cache.glob("features/*/key.json")]
    assert key["packages"]["numpy"] == np.__version__
    assert key["packages"]["libsndfile"] == sf.__libsndfile_version__
    real = cache_mod.package_versions()
    monkeypatch.setattr(cache_mod, "package_versions", lambda: {**real, "scipy": "0.0"})
    assert extract_files(clips[:1], "mfcc", cache_dir=cache, n_jobs=1).n_cached == 0


def test_ffmpeg_is_in_the_key_of_codec_copies_only(monkeypatch):
    from emovox.augment import AugmentRecipe, recipe_config
    from emovox.features.cache import AudioFrontEnd, Variant

    monkeypatch.setattr(cache_mod, "ffmpeg_version", lambda: "ffmpeg version 9.9")
    chan = recipe_config(AugmentRecipe.CHANNEL, 1)
    coded = dataclasses.replace(recipe_config(AugmentRecipe.CHANNEL_CODEC, 1), p_codec=1.0)
    key = partial(cache_mod._cache_key, "logmel", {}, AudioFrontEnd())
    assert "ffmpeg" not in json.loads(key(None)) | json.loads(key(Variant(chan, 0)))
    assert json.loads(key(Variant(coded, 0)))["ffmpeg"] == "ffmpeg version 9.9"


def _temp(folder: Path, name: str, age: float = 0.0) -> Path:
    """A temporary file as atomic_path names it, ``age`` seconds old."""
    fd, p = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    os.write(fd, b"partial")
    os.close(fd)
    t = time.time() - age
    os.utime(p, (t, t))
    return Path(p)


def test_temporary_files_of_killed_writers_are_swept(tmp_path):
    """A kill during put() left ``.HASH.npy.XXXX.tmp`` for ever (146 MB over three kills)."""
    cache = FeatureCache(tmp_path, "k", ndim=2)
    cache.put("ab" * 32, np.ones((3, 4), np.float32))
    old = cache_mod.STALE_TEMP_SECONDS + 60 if hasattr(cache_mod, "STALE_TEMP_SECONDS") \
        else 7200
    entry_dir = cache.path("ab" * 32).parent
    stale = [_temp(entry_dir, "cd" * 32 + ".npy", old), _temp(cache.dir, "shape.json", old)]
    fresh = _temp(entry_dir, "ef" * 32 + ".npy")  # perhaps another run's, writing now
    other = entry_dir / "notes.tmp"
    other.write_text("not ours")
    outside = tmp_path / "outside.npy.tmp"
    outside.write_text("keep")
    link = entry_dir / f".{'12' * 32}.npy.abcd1234.tmp"
    link.symlink_to(outside)
    for p in (other, outside):
        os.utime(p, (time.time() - old,) * 2)
    os.utime(link, (time.time() - old,) * 2, follow_symlinks=False)
    FeatureCache(tmp_path, "k", ndim=2)
    assert not any(p.exists() for p in stale)
    assert fresh.exists() and other.exists() and link.is_symlink() and outside.exists()
    assert FeatureCache(tmp_path, "k", ndim=2).get("ab" * 32) is not None


def test_the_sweep_knows_every_temporary_name_the_cache_makes(tmp_path, monkeypatch):
    names: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (names.append(Path(a).name),
                                                     real_replace(a, b))[1])
    FeatureCache(tmp_path, "k", ndim=2).put("ab" * 32, np.ones((3, 4), np.float32))
    assert len(names) == 3  # key.json, shape.json and the entry, all written atomically
    assert all(cache_mod._TEMP_NAME.fullmatch(n) for n in names), names


def test_an_empty_shape_file_is_written_again(tmp_path, caplog):
    """An empty shape.json (a kill between create and write) was never rewritten: the
    width check was off for good."""
    cache = FeatureCache(tmp_path, "kk", ndim=2)
    (cache.dir / "shape.json").write_text("")
    with caplog.at_level(logging.WARNING):
        cache = FeatureCache(tmp_path, "kk", ndim=2)
    assert "shape.json" in caplog.text and cache.dim is None
    cache.put("aa" * 32, np.zeros((10, 64), np.float32))
    assert json.loads((cache.dir / "shape.json").read_text())["dim"] == 64
    fresh = FeatureCache(tmp_path, "kk", ndim=2)
    assert fresh.dim == 64 and fresh.problem(np.zeros((10, 40), np.float32)) is not None


def test_side_files_replace_links_instead_of_writing_through_them(tmp_path):
    """A dangling key.json link planted in a shared cache made FeatureCache() create the
    link's target outside the cache."""
    import hashlib

    key = '{"feature": "x"}'
    folder = tmp_path / "shared" / "features" / hashlib.sha256(key.encode()).hexdigest()[:16]
    folder.mkdir(parents=True)
    victims = [tmp_path / "victim_key", tmp_path / "victim_shape"]
    (folder / "key.json").symlink_to(victims[0])
    (folder / "shape.json").symlink_to(victims[1])
    cache = FeatureCache(tmp_path / "shared", key, ndim=1)
    cache.put("ab" * 32, np.ones(5, np.float32))
    assert not any(v.exists() for v in victims)
    for name in ("key.json", "shape.json"):
        assert not (folder / name).is_symlink() and (folder / name).is_file()
    assert (folder / "key.json").read_text() == key
    assert FeatureCache(tmp_path / "shared", key, ndim=1).dim == 5


def _long_clip(path: Path, seconds: float) -> Path:
    """A silent clip of ``seconds`` at 1 kHz (small: 2 bytes a sample)."""
    sf.write(path, np.zeros(int(seconds * 1000), np.int16), 1000, subtype="PCM_16")
    return path


def test_research_clips_have_the_products_length_limit(tmp_path):
    """A 1-hour file took 1.9 GB to decode and featurise; a 10-hour one ~15 GB per worker."""
    from emovox.serving.service import DEFAULT_MAX_DURATION_S

    good = write_clip(tmp_path / "good.wav", sine(220.0, 0.5, amp=0.3))
    long = _long_clip(tmp_path / "long.wav", DEFAULT_MAX_DURATION_S + 1)
    ex = extract_files([good, long], "mfcc", cache_dir=tmp_path / "c", n_jobs=1)
    assert list(ex.errors) == [1] and ex.features[0] is not None
    msg = ex.errors[1]
    assert "longer than the 600 s limit" in msg and "RESEARCH_MAX_DURATION_S" in msg
    assert "--max-duration" not in msg  # the product's option: not research's
    assert cache_mod.RESEARCH_MAX_DURATION_S == DEFAULT_MAX_DURATION_S


def test_rescore_reads_clips_within_the_limit(tmp_path, monkeypatch):
    from emovox.experiment import rescore
    from emovox.experiment.rundir import Prediction
    from emovox.labels import LABELS
    from emovox.serving.predictor import Predictor

    @dataclasses.dataclass
    class Views:
        speeds: tuple = ()

        def replace(self, **kw):
            return dataclasses.replace(self, **kw)

    @dataclasses.dataclass
    class Reader:
        preprocess: Views = dataclasses.field(default_factory=Views)
        sr: int = 16000
        labels: tuple = tuple(LABELS)

        def wave_probabilities(self, wave, sr):
            return np.full(len(LABELS), 1 / len(LABELS))

    from emovox.serving.service import DEFAULT_MAX_DURATION_S

    monkeypatch.setattr(Predictor, "from_artifact", staticmethod(lambda *a, **k: Reader()))
    run = tmp_path / "run"
    (run / "models" / "fold0").mkdir(parents=True)
    (run / "models" / "fold0" / "model.json").write_text("{}")
    long = _long_clip(tmp_path / "long.wav", DEFAULT_MAX_DURATION_S + 1)
    rows = [Prediction(str(long), "s1", "sad", "sad", (1 / len(LABELS),) * len(LABELS), 0,
                       "ravdess")]
    with pytest.raises(AudioTooLong, match="600 s limit"):
        rescore._fold_probabilities(run, 0, rows, {"ravdess": tuple(range(len(LABELS)))},
                                    (0.9, 1.1))
