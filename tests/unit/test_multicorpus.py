"""Several corpora in one experiment: speaker-disjoint folds across corpora (loco, emobox with
extra corpora, loso), validation speakers, the scoring restriction to a corpus's classes,
corpus balancing and the ``--data`` parsing. No audio is decoded here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from corpus_trees import make

from emovox.config import DataConfig, ExperimentConfig, Protocol
from emovox.corpora.base import Gender, Utterance
from emovox.errors import ConfigError, LeakageError
from emovox.experiment.multicorpus import (
    balance_corpora,
    corpus_classes,
    per_corpus_metrics,
    restrict_to_corpus,
)
from emovox.labels import EMOTIONS, Emotion, emotion_index
from emovox.splits import Fold, check_fold, make_folds, pick_val_speakers

SEVEN = [e for e in EMOTIONS if e is not Emotion.CALM]
FOUR = [Emotion.NEUTRAL, Emotion.HAPPY, Emotion.SAD, Emotion.ANGRY]


def utts_of(corpus: str, speakers: list[str], emotions: list[Emotion], per: int = 1,
            ) -> list[Utterance]:
    out = []
    for s in speakers:
        g = Gender.FEMALE if s[-1] in "13579fF" else Gender.MALE
        for e in emotions:
            for k in range(per):
                out.append(Utterance(Path(f"/x/{corpus}/{s}-{e.value}-{k}.wav"), corpus,
                                     f"{corpus}:{s}", e, e.value, g))
    return out


def ravdess(actors=range(1, 25)) -> list[Utterance]:
    return utts_of("ravdess", [f"{a:02d}" for a in actors], list(EMOTIONS))


def emovo() -> list[Utterance]:
    return utts_of("emovo", ["f1", "f2", "f3", "m1", "m2", "m3"], SEVEN)


def urdu() -> list[Utterance]:
    return utts_of("urdu", ["SM1", "SF1", "SM2", "SF2", "SM3"], FOUR, per=2)


def corpora_of(utts, idx) -> set[str]:
    return {utts[i].corpus for i in idx}


# --------------------------------------------------------------------------- loco


def test_loco_holds_out_each_corpus_and_validates_on_the_others():
    utts = ravdess(range(1, 7)) + emovo() + urdu()
    folds = make_folds(utts, Protocol.LOCO, n_val_speakers=2)
    assert [f.held_out_corpus for f in folds] == ["ravdess", "emovo", "urdu"]
    for f in folds:
        h = f.held_out_corpus
        assert corpora_of(utts, f.test) == {h}
        assert len(f.test) == sum(u.corpus == h for u in utts)  # the whole corpus is tested
        assert h not in corpora_of(utts, f.train) | corpora_of(utts, f.val)
        # validation: one speaker from each training corpus, in turn
        assert {s.split(":")[0] for s in f.val_speakers} == {"ravdess", "emovo", "urdu"} - {h}
        assert not set(f.val_speakers) & set(f.test_speakers)
        assert len(f.train) + len(f.val) + len(f.test) == len(utts)


def test_loco_needs_two_corpora():
    with pytest.raises(ConfigError, match="at least two corpora"):
        make_folds(ravdess(range(1, 7)), Protocol.LOCO)


def test_leakage_check_catches_the_held_out_corpus_on_the_training_side():
    utts = ravdess(range(1, 4)) + emovo()
    idx = np.arange(len(utts))
    is_emovo = np.array([u.corpus == "emovo" for u in utts])
    # one emovo speaker moved to training: no speaker is shared, yet the corpus leaks
    f1 = np.array([u.speaker == "emovo:f1" for u in utts])
    fold = Fold(0, idx[~is_emovo | f1], np.array([], int), idx[is_emovo & ~f1], (), (),
                True, "emovo")
    with pytest.raises(LeakageError, match="held-out corpus emovo is on the train side"):
        check_fold(fold, utts)
    ok = Fold(0, idx[~is_emovo], np.array([], int), idx[is_emovo], (), (), True, "emovo")
    check_fold(ok, utts)  # the correct fold passes
    bad_test = Fold(0, idx[is_emovo], np.array([], int), idx[~is_emovo], (), (), True, "emovo")
    with pytest.raises(LeakageError, match="other than the held-out"):
        check_fold(bad_test, utts)


# --------------------------------------------------------------------------- speakers


def test_same_local_speaker_id_in_two_corpora_never_merges():
    a = utts_of("emodb", ["03", "08"], FOUR)
    b = utts_of("ravdess", ["03", "08"], FOUR)
    folds = make_folds(a + b, Protocol.LOSO, n_val_speakers=1)
    assert len(folds) == 4  # emodb:03, emodb:08, ravdess:03, ravdess:08
    for f in folds:
        assert len(corpora_of(a + b, f.test)) == 1


def test_leakage_check_refuses_speaker_ids_without_their_corpus():
    utts = utts_of("ravdess", ["01", "02"], FOUR)
    utts[0] = Utterance(utts[0].path, "ravdess", "01", Emotion.NEUTRAL, "neutral")
    fold = Fold(0, np.array([0]), np.array([], int), np.arange(4, 8), (), ())
    with pytest.raises(LeakageError, match="do not carry their corpus"):
        check_fold(fold, utts)


def test_shared_speaker_across_sides_is_caught_in_multi_corpus_folds():
    utts = ravdess(range(1, 5)) + urdu()
    spk = np.array([u.speaker for u in utts])
    idx = np.arange(len(utts))
    sm1 = idx[spk == "urdu:SM1"]
    fold = Fold(0, np.concatenate([idx[spk != "urdu:SM1"], sm1[:1]]), np.array([], int),
                sm1[1:], ("urdu:SM1",), ())
    with pytest.raises(LeakageError, match="urdu:SM1"):
        check_fold(fold, utts)


def _old_pick(speakers, utts, n, rng):
    """The single-corpus draw before corpora were mixed (kept to pin the behaviour)."""
    gender = {u.speaker: u.gender.value for u in utts}
    groups: dict[str, list[str]] = {}
    for s in sorted(speakers):
        groups.setdefault(gender.get(s, "unknown"), []).append(s)
    pools = [list(rng.permutation(g)) for _, g in sorted(groups.items())]
    out: list[str] = []
    while len(out) < n:
        for pool in pools:
            if pool and len(out) < n:
                out.append(str(pool.pop()))
    return out


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_single_corpus_validation_draw_is_unchanged(seed, n):
    utts = ravdess()
    speakers = sorted({u.speaker for u in utts})
    new = pick_val_speakers(speakers, utts, n, np.random.default_rng(seed))
    assert new == _old_pick(speakers, utts, n, np.random.default_rng(seed))


def test_multi_corpus_validation_takes_corpora_in_turn_and_keeps_each_one():
    utts = utts_of("emovo", ["f1", "m1"], SEVEN) + ravdess(range(1, 9))
    speakers = sorted({u.speaker for u in utts})
    val = pick_val_speakers(speakers, utts, 3, np.random.default_rng(0))
    assert [s.split(":")[0] for s in val] == ["emovo", "ravdess", "ravdess"]  # emovo keeps one
    with pytest.raises(ConfigError, match="keep every training corpus"):
        pick_val_speakers(speakers, utts, 9, np.random.default_rng(0))


# --------------------------------------------------------------------------- emobox + extras


def test_emobox_with_extra_corpora_only_grows_the_training_side():
    base = ravdess()
    extra = emovo() + urdu()
    plain = make_folds(base, Protocol.EMOBOX, seed=3)
    mixed = make_folds(base + extra, Protocol.EMOBOX, seed=3)
    assert len(plain) == len(mixed) == 6
    n = len(base)
    for p, m in zip(plain, mixed, strict=True):
        assert np.array_equal(p.test, m.test) and np.array_equal(p.val, m.val)
        assert p.val_speakers == m.val_speakers  # validation stays on RAVDESS actors
        assert np.array_equal(m.train, np.concatenate([p.train, np.arange(n, n + len(extra))]))


def test_emobox_without_ravdess_is_refused():
    with pytest.raises(ConfigError, match="needs RAVDESS"):
        make_folds(emovo() + urdu(), Protocol.EMOBOX)


# --------------------------------------------------------------------------- scoring


def test_restriction_to_a_corpus_classes_renormalises_and_zeroes_the_rest():
    utts = ravdess(range(1, 3)) + urdu()
    y = np.array([emotion_index(u.emotion) for u in utts])
    classes = corpus_classes(utts, y)
    assert classes["ravdess"] == tuple(range(8))
    assert classes["urdu"] == tuple(sorted(emotion_index(e) for e in FOUR))
    p = np.full((3, 8), 1 / 8)
    p[1] = [0.0, 0.9, 0.02, 0.02, 0.06, 0.0, 0.0, 0.0]  # calm wins unrestricted
    p[2] = [0, 0.5, 0, 0, 0, 0.5, 0, 0]  # no mass on urdu's classes at all
    out = restrict_to_corpus(p, ["ravdess", "urdu", "urdu"], classes)
    np.testing.assert_allclose(out[0], p[0])
    np.testing.assert_allclose(out.sum(1), 1.0)
    assert out[1].argmax() == emotion_index(Emotion.ANGRY)
    np.testing.assert_allclose(out[1, [0, 2, 3, 4]], [0, 0.2, 0.2, 0.6])
    assert out[1, 1] == 0 and out[2, 1] == 0 and out[2, 5] == 0
    np.testing.assert_allclose(out[2, [0, 2, 3, 4]], 0.25)  # uniform fallback


def test_per_corpus_ua_is_over_the_classes_each_corpus_has():
    y_true = np.array([0, 4, 0, 4, 3, 3])
    y_pred = np.array([0, 4, 0, 0, 3, 0])
    m = per_corpus_metrics(y_true, y_pred, ["urdu", "urdu", "emovo", "emovo", "urdu", "emovo"])
    assert list(m) == ["urdu", "emovo"]
    assert m["urdu"].ua == pytest.approx(100.0)
    assert m["emovo"].ua == pytest.approx(100 * (1 + 0 + 0) / 3)  # neutral, angry, sad


# --------------------------------------------------------------------------- balancing


def test_balance_corpora_equalises_the_training_side_only():
    utts = ravdess(range(1, 7)) + urdu()  # 48 ravdess vs 40 urdu clips
    rav = np.arange(48)
    ur = np.arange(48, 88)
    train = np.concatenate([rav[:40], ur[:9]])  # 40 ravdess, 9 urdu
    out = balance_corpora(train, utts, np.random.default_rng(0))
    counts = {c: sum(utts[i].corpus == c for i in out) for c in ("ravdess", "urdu")}
    assert counts == {"ravdess": 40, "urdu": 40}
    assert set(out) == set(train)  # nothing outside the training side
    per = np.bincount(out[out >= 48] - 48)
    assert set(per[per > 0]) <= {4, 5}  # 40 = 4 whole copies of 9, plus 4 more
    np.testing.assert_array_equal(out, balance_corpora(train, utts, np.random.default_rng(0)))
    np.testing.assert_array_equal(balance_corpora(rav, utts, np.random.default_rng(0)), rav)


# --------------------------------------------------------------------------- config


def test_data_config_sources_and_round_trip(tmp_path):
    d = DataConfig(corpus="ravdess", root="/r", corpora=("emovo=/e", "urdu = /u"))
    assert d.sources() == [("ravdess", "/r"), ("emovo", "/e"), ("urdu", "/u")]
    cfg = ExperimentConfig(data=d)
    cfg.save_yaml(tmp_path / "c.yaml")
    back = ExperimentConfig.load_yaml(tmp_path / "c.yaml")
    assert back.data == d and back.data.sources() == d.sources()
    for bad in ("emovo", "=/e", "emovo="):
        with pytest.raises(ConfigError, match="NAME=DIR"):
            DataConfig(root="/r", corpora=(bad,)).sources()


def test_cli_data_items_parse_into_one_config(tmp_path, monkeypatch):
    from emovox.cli.data_args import data_config

    one = data_config(["/data/rav"], "ravdess")
    assert (one.corpus, one.root, one.corpora) == ("ravdess", "/data/rav", ())
    many = data_config(["ravdess=/r", "EMOVO=/e", "urdu=/u=x"], "tess", balance_corpora=True)
    assert (many.corpus, many.root, many.corpora) == ("ravdess", "/r", ("EMOVO=/e", "urdu=/u=x"))
    assert many.balance_corpora
    # a folder whose name has '=' but no corpus before it is a plain folder read with --corpus
    odd = data_config(["/data/a=b", "emovo=/e"], "ravdess")
    assert (odd.corpus, odd.root, odd.corpora) == ("ravdess", "/data/a=b", ("emovo=/e",))
    with pytest.raises(ValueError, match="twice"):
        data_config(["ravdess=/a", "/b"], "ravdess")
    with pytest.raises(ValueError, match="unknown corpus"):
        data_config(["/a"], "iemocap")
    with pytest.raises(ValueError, match="no data directory"):
        data_config([], "ravdess")
    # a bare name before '=' that is no reader, or nothing after it, is named as such
    with pytest.raises(ValueError, match=r"'bogus' is not a corpus reader \(known: .*ravdess"):
        data_config(["bogus=/tmp"], "ravdess")
    with pytest.raises(ValueError, match="no directory after '='"):
        data_config(["ravdess="], "ravdess")
    here = tmp_path / "take=2"
    here.mkdir()  # an existing folder named like NAME=DIR is still a folder
    assert data_config([str(here)], "ravdess").root == str(here)
    monkeypatch.chdir(tmp_path)
    cwd = Path.cwd()  # each root is recorded absolute (review, stop 52)
    assert data_config(["take=2"], "ravdess").root == str(cwd / "take=2")
    (tmp_path / "ravdess=v2").mkdir()  # even when NAME is a reader (research QA, stop 32)
    assert data_config(["ravdess=v2"], "ravdess").root == str(cwd / "ravdess=v2")
    (tmp_path / "v2").mkdir()  # ... unless the corpus's folder exists too: ambiguous
    with pytest.raises(ValueError, match=r"both a folder and the corpus ravdess at v2: write "
                                         r"\./ravdess=v2 for the folder, or ravdess=\./v2"):
        data_config(["ravdess=v2"], "ravdess")
    assert data_config(["./ravdess=v2"], "ravdess").root == str(cwd / "ravdess=v2")
    (tmp_path / "RAVDESS=v2").mkdir()  # any spelling a reader accepts (re-check 2)
    with pytest.raises(ValueError, match="both a folder and the corpus RAVDESS at v2"):
        data_config(["RAVDESS=v2"], "ravdess")
    assert data_config(["ravdess=./v2"], "ravdess").root == str(cwd / "v2")


# --------------------------------------------------------------------------- load_dataset


def _trees(tmp_path: Path) -> tuple[Path, Path, Path]:
    rav, emo, ur = tmp_path / "rav", tmp_path / "emo", tmp_path / "ur"
    for a in ("01", "02"):
        for e in ("01", "05"):
            make(rav, f"Actor_{a}/03-01-{e}-01-01-01-{a}.wav")
    make(rav, "Actor_02/03-02-05-01-01-01-02.wav")  # song: not read by default
    for spk in ("f1", "m1"):
        make(emo, f"{spk}/rab-{spk}-b1.wav")
        make(emo, f"{spk}/tri-{spk}-b1.wav")
    make(ur, "Angry/SM1_F1_A01.wav")
    make(ur, "Sad/SF1_F1_S01.wav")
    return rav, emo, ur


def test_load_dataset_reads_every_corpus_with_its_metadata(tmp_path):
    from emovox.experiment.dataset import load_dataset

    rav, emo, ur = _trees(tmp_path)
    ds = load_dataset(DataConfig(root=str(rav), corpora=(f"emovo={emo}", f"urdu={ur}")))
    assert ds.corpora == ["ravdess", "emovo", "urdu"]
    assert [sum(u.corpus == c for u in ds.utts) for c in ds.corpora] == [4, 4, 2]
    assert all(u.speaker.startswith(f"{u.corpus}:") for u in ds.utts)
    assert "emovo: 4 files" in ds.report and "urdu: 2 files" in ds.report


def test_load_dataset_speaker_filter_names_corpora(tmp_path):
    from emovox.experiment.dataset import load_dataset

    rav, emo, ur = _trees(tmp_path)
    more = (f"emovo={emo}", f"urdu={ur}")
    ds = load_dataset(DataConfig(root=str(rav), corpora=more, speakers=("1", "emovo:m1")))
    assert sorted({u.speaker for u in ds.utts}) == [
        "emovo:m1", "ravdess:01", "urdu:SF1", "urdu:SM1"]  # urdu not named: kept whole
    with pytest.raises(ConfigError, match="not in the data: urdu"):
        load_dataset(DataConfig(root=str(rav), corpora=(f"emovo={emo}",),
                                speakers=("urdu:SM1",)))
    # a speaker the corpus lacks is named (a typo ran another experiment: QA stop 32)
    with pytest.raises(ConfigError, match=r"names emovo speaker\(s\) not in .*emo: f3 \(it "
                                          r"has f1, m1\)"):
        load_dataset(DataConfig(root=str(rav), corpora=more, speakers=("emovo:f3",)))
    with pytest.raises(ConfigError, match=r"ravdess speaker\(s\) not in .*: 3 \(it has 01, 02"):
        load_dataset(DataConfig(root=str(rav), speakers=("01", "03")))


def test_load_dataset_refuses_a_corpus_twice_and_bad_entries(tmp_path):
    from emovox.experiment.dataset import load_dataset

    rav, emo, _ = _trees(tmp_path)
    with pytest.raises(ConfigError, match="corpus given twice: emovo"):
        load_dataset(DataConfig(root=str(rav), corpora=(f"emovo={emo}", f"EMOVO={emo}")))
    with pytest.raises(ValueError, match="unknown corpus 'iemocap'"):
        load_dataset(DataConfig(root=str(rav), corpora=(f"iemocap={emo}",)))
    with pytest.raises(FileNotFoundError):
        load_dataset(DataConfig(root=str(rav), corpora=(f"emovo={tmp_path / 'nope'}",)))


def test_duplicate_audio_across_corpora_is_dropped(tmp_path):
    from emovox.experiment.dataset import load_dataset

    rav, emo, _ = _trees(tmp_path)
    same = (rav / "Actor_01" / "03-01-05-01-01-01-01.wav").read_bytes()
    make(emo, "m1/rab-m1-b2.wav", same)
    ds = load_dataset(DataConfig(root=str(rav), corpora=(f"emovo={emo}",)))
    assert ds.dropped_duplicates == ["rab-m1-b2.wav == 03-01-05-01-01-01-01.wav (listed as "
                                     "speakers emovo:m1 and ravdess:01: check them)"]


def test_load_dataset_says_what_it_leaves_out_and_conflicting_copies(tmp_path, caplog):
    """Labels outside the eight emotions were dropped without a word outside `scan`, and a
    copy listed under another speaker or label was dropped as a plain duplicate (own-data
    QA, stop 33)."""
    import logging

    from emovox.experiment.dataset import load_dataset

    for name in ("a1.wav", "a2.wav", "b1.wav", "b2.wav", "c1.wav"):
        make(tmp_path, name)
    make(tmp_path, "copy.wav", (tmp_path / "a1.wav").read_bytes())
    (tmp_path / "m.csv").write_text(
        "path,label,speaker\na1.wav,angry,A\na2.wav,sad,A\nb1.wav,angry,B\nb2.wav,sad,B\n"
        "c1.wav,boredom,B\ncopy.wav,sad,B\n")
    with caplog.at_level(logging.WARNING, logger="emovox.experiment.dataset"):
        ds = load_dataset(DataConfig(root=str(tmp_path / "m.csv"), corpus="csv"))
    assert len(ds.utts) == 4
    assert "1 clip(s) with labels outside the eight emotions were left out: boredom (1)" in (
        caplog.text)
    assert ("copy.wav == a1.wav (listed as speakers csv:B and csv:A; labels sad and angry: "
            "check them)") in caplog.text
