"""Speaker-grouped folds: disjoint speakers, validation from training side, leak guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emovox.config import Protocol
from emovox.corpora.base import Gender, Utterance
from emovox.errors import ConfigError, LeakageError
from emovox.labels import EMOTIONS
from emovox.splits import Fold, check_fold, emobox_test_speakers, make_folds


def fake_ravdess(n_actors: int = 24, song_actors: tuple[int, ...] = ()) -> list[Utterance]:
    utts = []
    for a in range(1, n_actors + 1):
        for e, emo in enumerate(EMOTIONS):
            for rep in (1, 2):
                for channel in ("speech",) + (("song",) if a in song_actors and e < 6 else ()):
                    vc = 1 if channel == "speech" else 2
                    name = f"03-{vc:02d}-{e + 1:02d}-01-01-{rep:02d}-{a:02d}"
                    gender = Gender.MALE if a % 2 else Gender.FEMALE
                    utts.append(
                        Utterance(
                            Path(f"/x/{name}.wav"), "ravdess", f"ravdess:{a:02d}", emo,
                            f"{e + 1:02d}", gender, {"vocal_channel": channel},
                        )
                    )
    return utts


def test_emobox_folds_cover_every_actor_once():
    sets = emobox_test_speakers()
    assert len(sets) == 6 and all(len(s) == 4 for s in sets)
    flat = [s for fold in sets for s in fold]
    assert sorted(flat) == [f"ravdess:{a:02d}" for a in range(1, 25)]


#: EmoBox's RAVDESS folds, as published (four test actors per fold, fold order kept)
EMOBOX_RAVDESS_FOLDS = [
    ("01", "11", "20", "21"),
    ("04", "10", "12", "14"),
    ("08", "09", "19", "23"),
    ("03", "05", "07", "24"),
    ("02", "15", "16", "18"),
    ("06", "13", "17", "22"),
]


def test_emobox_folds_are_the_published_assignment():
    """Any partition of 24 actors into 6 x 4 passes the cover test above; results are only
    comparable with EmoBox's on its own assignment, fold by fold."""
    assert emobox_test_speakers() == [tuple(f"ravdess:{a}" for a in fold)
                                      for fold in EMOBOX_RAVDESS_FOLDS]


def test_emobox_folds_match_the_shared_folds_json(shared_data):
    import json

    path = shared_data / "ravdess" / "folds.json"
    if not path.exists():
        pytest.skip(f"no {path} to compare with")
    shared = json.loads(path.read_text())["folds"]
    assert [tuple(fold) for fold in shared] == EMOBOX_RAVDESS_FOLDS
    assert emobox_test_speakers() == [tuple(f"ravdess:{a}" for a in fold) for fold in shared]


def test_emobox_folds_are_speaker_disjoint_and_val_from_train_side():
    utts = fake_ravdess()
    folds = make_folds(utts, Protocol.EMOBOX, seed=0, n_val_speakers=2)
    assert len(folds) == 6
    tested = []
    for f in folds:
        spk = {s: {utts[i].speaker for i in getattr(f, s)} for s in ("train", "val", "test")}
        assert spk["test"] == set(f.test_speakers)
        assert spk["val"] == set(f.val_speakers) and len(spk["val"]) == 2
        assert not (spk["train"] & spk["test"]) and not (spk["val"] & spk["test"])
        assert not (spk["train"] & spk["val"])
        # gender-balanced validation speakers
        assert {utts[i].gender for i in f.val} == {Gender.MALE, Gender.FEMALE}
        assert len(f.train) + len(f.val) + len(f.test) == len(utts)
        tested += list(f.test)
    assert sorted(tested) == list(range(len(utts)))


def test_an_emobox_fold_keeps_its_number_when_others_have_no_speaker():
    """``--speakers 01,02,11``: EmoBox folds 0 and 4 ran as "0" and "1", and ``--folds 4``
    was "out of range" (README QA, stop 38)."""
    from emovox.config import DataConfig, ExperimentConfig, ModelConfig, SplitConfig
    from emovox.experiment.runner import chosen_folds

    keep = {"ravdess:01", "ravdess:02", "ravdess:11"}
    utts = [u for u in fake_ravdess() if u.speaker in keep]
    folds = make_folds(utts, Protocol.EMOBOX, n_val_speakers=0)
    sets = emobox_test_speakers()
    assert [f.index for f in folds] == [k for k, ts in enumerate(sets) if keep & set(ts)]
    for f in folds:
        assert set(f.test_speakers) == keep & set(sets[f.index])

    def cfg(folds_: tuple[int, ...]) -> ExperimentConfig:
        return ExperimentConfig(data=DataConfig(root="/r"), model=ModelConfig("egemaps_logreg"),
                                split=SplitConfig(protocol=Protocol.EMOBOX, folds=folds_))

    last = folds[-1].index
    assert [f.index for f in chosen_folds(cfg((last,)), folds)] == [last]
    missing = next(k for k in range(6) if k not in {f.index for f in folds})
    with pytest.raises(ConfigError, match=rf"fold indices \[{missing}\]: this run's folds "
                                          rf"are {', '.join(str(f.index) for f in folds)}"):
        chosen_folds(cfg((missing,)), folds)
    with pytest.raises(ConfigError, match="repeat a fold"):  # each clip counted twice
        chosen_folds(cfg((last, last)), folds)  # (code review, stop 47)


def test_loso_has_one_fold_per_speaker():
    utts = fake_ravdess(6)
    folds = make_folds(utts, Protocol.LOSO, n_val_speakers=1)
    assert [f.test_speakers for f in folds] == [(f"ravdess:{a:02d}",) for a in range(1, 7)]


def test_training_only_clips_never_tested_and_follow_the_fold():
    utts = fake_ravdess(24, song_actors=tuple(range(1, 25)))
    train_only = np.array([u.meta["vocal_channel"] == "song" for u in utts])
    for f in make_folds(utts, Protocol.EMOBOX, train_only=train_only):
        assert not train_only[f.test].any() and not train_only[f.val].any()
        assert train_only[f.train].any()
        # a test actor's song clips are not trained on
        assert not {utts[i].speaker for i in f.train if train_only[i]} & set(f.test_speakers)


def test_a_speaker_with_only_training_clips_gets_no_empty_fold(caplog):
    """`--channels song --train-extra speech`: RAVDESS actor 18 sang nothing, so its loso
    fold had no test clip and the run failed after every fold before it had trained (code
    review, stop 47). Such a fold is left out, with a warning, once made: the other folds
    keep the validation speakers they had (a first fix changed them)."""
    utts = fake_ravdess(6, song_actors=(2, 3, 4, 5, 6))
    train_only = np.array([u.meta["vocal_channel"] == "speech" for u in utts])
    with caplog.at_level("WARNING"):
        folds = make_folds(utts, Protocol.LOSO, n_val_speakers=1, train_only=train_only)
    assert [f.test_speakers for f in folds] == [(f"ravdess:{a:02d}",) for a in range(2, 7)]
    assert all(len(f.test) for f in folds)
    assert "fold 0 (ravdess:01) has no clip to test" in caplog.text
    one = train_only.copy()  # one clip of actor 1 testable: its fold comes back, the others
    one[[i for i, u in enumerate(utts) if u.speaker == "ravdess:01"][0]] = False  # as they
    again = make_folds(utts, Protocol.LOSO, n_val_speakers=1, train_only=one)  # were
    assert [f.val_speakers for f in again[1:]] == [f.val_speakers for f in folds]


def test_random_protocol_is_stratified_and_marked_speaker_dependent():
    utts = fake_ravdess(24)
    (f,) = make_folds(utts, Protocol.RANDOM, seed=1)
    assert not f.speaker_independent and not Protocol.RANDOM.speaker_independent
    assert abs(len(f.test) - 0.2 * len(utts)) <= 1
    counts = np.bincount([EMOTIONS.index(utts[i].emotion) for i in f.test], minlength=8)
    assert counts.max() - counts.min() <= 1  # stratified


def test_random_protocol_without_validation_trains_on_every_other_clip():
    utts = fake_ravdess(24)
    (held,) = make_folds(utts, Protocol.RANDOM, seed=1)
    (f,) = make_folds(utts, Protocol.RANDOM, seed=1, n_val_speakers=0)
    assert len(held.val) > 0 and len(f.val) == 0
    assert np.array_equal(f.test, held.test)  # the same test clips either way
    assert np.array_equal(f.train, np.sort(np.concatenate([held.train, held.val])))
    assert len(f.train) + len(f.test) == len(utts)


def test_random_protocol_never_validates_on_training_only_clips():
    """`--train-extra song`: 109 of 216 validation clips were song, a channel never tested
    (research audit, stop 51); without training-only clips the draw is unchanged."""
    from sklearn.model_selection import train_test_split

    utts = fake_ravdess(24, song_actors=tuple(range(1, 25)))
    train_only = np.array([u.meta["vocal_channel"] == "song" for u in utts])
    (f,) = make_folds(utts, Protocol.RANDOM, seed=1, train_only=train_only)
    assert len(f.val) > 0 and not train_only[f.val].any()
    assert train_only[f.train].sum() == train_only.sum() and not train_only[f.test].any()
    speech = [u for u, t in zip(utts, train_only, strict=True) if not t]
    (plain,) = make_folds(speech, Protocol.RANDOM, seed=1)
    y = np.array([u.emotion.value for u in speech])  # the draw as it was before the fix
    tr, te = train_test_split(np.arange(len(speech)), test_size=0.2, stratify=y,
                              random_state=1)
    tr, va = train_test_split(tr, test_size=0.1, stratify=y[tr], random_state=1)
    assert np.array_equal(plain.val, np.sort(va)) and np.array_equal(plain.test, np.sort(te))


def test_leaky_fold_is_rejected():
    utts = fake_ravdess(4)
    idx = np.arange(len(utts))
    spk = np.array([u.speaker for u in utts])
    # actor 01 is the test speaker, but one of its clips also sits in training
    a01 = idx[spk == "ravdess:01"]
    leaky = Fold(0, np.append(idx[spk == "ravdess:02"], a01[0]), np.array([], int), a01[1:],
                 ("ravdess:01",), ())
    with pytest.raises(LeakageError, match="ravdess:01"):
        check_fold(leaky, utts)
    same_clip = Fold(0, np.array([0, 1]), np.array([], int), np.array([1, 2]), (), (), False)
    with pytest.raises(LeakageError, match="both train and test"):
        check_fold(same_clip, utts)
    # identical audio content on both sides, even with distinct clips and no speaker rule
    ids = [str(i) for i in range(len(utts))]
    ids[5] = ids[0]
    dup = Fold(0, np.array([0]), np.array([], int), np.array([5]), (), (), False)
    with pytest.raises(LeakageError, match="identical audio"):
        check_fold(dup, utts, ids)


def test_clean_fold_passes_check():
    utts = fake_ravdess(4)
    spk = np.array([u.speaker for u in utts])
    idx = np.arange(len(utts))
    ok = Fold(0, idx[spk == "ravdess:01"], idx[spk == "ravdess:02"], idx[spk == "ravdess:03"],
              ("ravdess:03",), ("ravdess:02",))
    check_fold(ok, utts)  # does not raise


def test_emobox_rejects_non_ravdess_speakers():
    utts = [
        Utterance(Path(f"/x/{i}.wav"), "tess", "tess:OAF", EMOTIONS[i % 8], "x") for i in range(16)
    ]
    with pytest.raises(ConfigError, match="RAVDESS"):
        make_folds(utts, Protocol.EMOBOX)


def test_too_many_validation_speakers():
    with pytest.raises(ConfigError, match="validation"):
        make_folds(fake_ravdess(5), Protocol.EMOBOX, n_val_speakers=4)


def _three_corpora() -> list[Utterance]:
    """Fake RAVDESS (6 actors) + two small corpora, ``emovo`` and ``urdu``, 3 speakers each."""
    utts = fake_ravdess(6)
    for corpus in ("emovo", "urdu"):
        for s in range(3):
            for e, emo in enumerate(EMOTIONS[:4]):
                gender = Gender.MALE if s % 2 else Gender.FEMALE
                utts.append(Utterance(Path(f"/{corpus}/{s}-{e}.wav"), corpus, f"{corpus}:{s}",
                                      emo, "", gender, {}))
    return utts


def test_loco_test_only_corpus_is_tested_but_never_trained_on():
    utts = _three_corpora()
    corpus = np.array([u.corpus for u in utts])
    folds = make_folds(utts, Protocol.LOCO, n_val_speakers=1, test_only_corpora=("urdu",))
    assert [f.held_out_corpus for f in folds] == ["ravdess", "emovo", "urdu"]
    for f in folds:
        assert "urdu" not in set(corpus[f.train]) | set(corpus[f.val])
        assert set(corpus[f.test]) == {f.held_out_corpus}
    # the urdu fold trains on the other two; the emovo fold on ravdess alone
    assert set(corpus[folds[2].train]) == {"ravdess", "emovo"}
    assert set(corpus[folds[1].train]) == {"ravdess"}
    # without it, urdu is trained on when another corpus is held out
    plain = make_folds(utts, Protocol.LOCO, n_val_speakers=1)
    assert "urdu" in set(corpus[plain[0].train])


def test_loco_test_only_refusals():
    utts = _three_corpora()
    with pytest.raises(ConfigError, match="not in the data"):
        make_folds(utts, Protocol.LOCO, test_only_corpora=("savee",))
    with pytest.raises(ConfigError, match="protocol loco"):
        make_folds(utts, Protocol.EMOBOX, test_only_corpora=("urdu",))
    two = [u for u in utts if u.corpus != "emovo"]
    with pytest.raises(ConfigError, match="no training corpus left"):
        make_folds(two, Protocol.LOCO, n_val_speakers=1, test_only_corpora=("urdu",))


def test_check_fold_catches_a_test_only_corpus_in_training():
    utts = _three_corpora()
    (f,) = make_folds(utts, Protocol.LOCO, n_val_speakers=1, test_only_corpora=("urdu",))[:1]
    urdu = np.array([i for i, u in enumerate(utts) if u.corpus == "urdu"])
    bad = Fold(f.index, np.concatenate([f.train, urdu]), f.val, f.test, f.test_speakers,
               f.val_speakers, True, f.held_out_corpus, f.test_only_corpora)
    with pytest.raises(LeakageError, match="test-only corpus urdu"):
        check_fold(bad, utts)


def test_a_test_class_the_training_side_lacks_is_warned_about(caplog):
    """A class only one speaker had scored 0 in that speaker's fold without a word
    (own-data QA, stop 39)."""
    from emovox.splits import warn_unheard_test_classes

    utts = [Utterance(Path(f"/x/{s}{i}.wav"), "csv", f"csv:{s}", EMOTIONS[i % 2], "x")
            for s in "ab" for i in range(4)]
    utts.append(Utterance(Path("/x/c.wav"), "csv", "csv:c", EMOTIONS[5], "x"))
    y = np.array([EMOTIONS.index(u.emotion) for u in utts])
    folds = [Fold(k, np.array(tr), np.array([], int), np.array(te), (sp,), ())
             for k, (tr, te, sp) in enumerate([(range(4, 9), range(4), "csv:a"),
                                               (range(0, 8), [8], "csv:c")])]
    names = [e.value for e in EMOTIONS]
    said = warn_unheard_test_classes(folds, y, utts, names)
    assert said == [f"fold 1: {names[5]} (1 test clip(s), speaker(s) csv:c) has no training "
                    "clip in this fold: every one is scored as a miss"]
    assert said[0] in caplog.text
    # the class on the validation side only: unheard by a network, heard by a classical
    # model, which fits on the validation clips too (re-check, stop 39)
    val = [Fold(0, np.arange(4, 8), np.array([8]), np.arange(0, 4), ("csv:a",), ("csv:c",))]
    assert len(warn_unheard_test_classes(val, np.r_[y[:3], 5, y[4:]], utts, names)) == 1
    assert warn_unheard_test_classes(val, np.r_[y[:3], 5, y[4:]], utts, names,
                                     fits_validation=True) == []


def test_too_many_validation_speakers_name_whose_training_side():
    """``train`` has no folds: it was told "(a fold's training side)" (review, stop 52)."""
    from emovox.splits import TooFewForValidation, pick_val_speakers

    utts = fake_ravdess(4)
    speakers = sorted({u.speaker for u in utts})
    with pytest.raises(TooFewForValidation) as caught:
        pick_val_speakers(speakers, utts, 4, np.random.default_rng(0))
    assert str(caught.value).startswith("cannot hold out 4 validation speakers from 4 "
                                        "training speakers: give --val-speakers 3 or fewer")
    assert "fold" not in str(caught.value)
    with pytest.raises(TooFewForValidation, match="from 3 training speakers of fold 0: give "
                                                  "--val-speakers 2 or fewer"):
        make_folds(utts, Protocol.LOSO, seed=0, n_val_speakers=3)
