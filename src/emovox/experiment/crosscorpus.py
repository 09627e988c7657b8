"""Score a trained model on another corpus, over the classes the two share.

The model's probabilities are restricted to the shared classes (and renormalised), so a
model that knows "calm" is not punished on a corpus without it and cannot win by
predicting it. Same metrics, plots and run directory as cross-validation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.artifact.clips import heard_clips
from emovox.artifact.paths import resolve_model_path
from emovox.corpora import (
    SPEAKER_PATTERN_FOLDER_ONLY,
    corpus_label_map,
    reader_options,
    scan_corpus,
)
from emovox.corpora.base import Utterance, is_unknown_speaker
from emovox.corpora.detect import reader_hint
from emovox.errors import ConfigError, EmovoxError
from emovox.experiment.rundest import (
    check_run_destination,
    default_run_dir,
    refuse_out_among,
    staged_run_dir,
)
from emovox.experiment.rundir import (
    Prediction,
    Predictions,
    RunDirError,
    write_run,
)
from emovox.experiment.runfiles import run_folder_lacks
from emovox.fileio import CLAIM_LOCK
from emovox.labels import LABELS
from emovox.metrics import Metrics, compute_metrics

log = logging.getLogger(__name__)


@dataclass
class CrossCorpusResult:
    corpus: str
    classes: list[str]
    metrics: Metrics
    n_files: int
    n_errors: int
    seconds: float
    out_dir: Path


def shared_label_set(corpus: str, labels: tuple[str, ...] = LABELS) -> list[str]:
    """Canonical labels the corpus can produce that the model also knows, in model order."""
    mapped = {e.value for e in corpus_label_map(corpus).values() if e is not None}
    return [lab for lab in labels if lab in mapped]


def _model_classes(predictor: Any, corpus: str) -> list[str]:
    """The classes of ``corpus`` the model knows and heard in training (a class it never
    heard answers 0 by construction: it was scored, recall 0, without a word; stop 37's
    list); ConfigError when fewer than two are left."""
    classes = [c for c in shared_label_set(corpus) if c in predictor.labels]
    meta = predictor.artifact_meta
    unheard = [meta.labels[i] for i in meta.unseen_labels() if meta.labels[i] in classes]
    if unheard:
        log.warning("the model never heard %s (its training data held no such clip): left "
                    "out of the score", ", ".join(unheard))
        classes = [c for c in classes if c not in unheard]
    if len(classes) < 2:
        raise ConfigError(f"{corpus} shares fewer than two classes with the model")
    return classes


#: how an ``evaluate --artifact`` output's metrics.json ``protocol`` begins
#: (``cross-corpus:<corpus>``): the only run folder its ``--out`` replaces
CROSS_CORPUS = "cross-corpus:"


def check_cross_corpus_destination(out: Path) -> None:
    """:class:`~emovox.experiment.rundir.RunDirError` unless ``out`` is free, an empty
    folder or an earlier ``evaluate --artifact`` output (its metrics.json ``protocol``
    begins with :data:`CROSS_CORPUS`), nothing else there
    (:func:`~emovox.experiment.rundest.check_run_destination`): a cross-validation run at
    ``--out`` lost its fold models, config.yaml and training curves (review, stop 56)."""
    check_run_destination(out)
    _earlier_output(Path(out))


def _earlier_output(out: Path) -> None:
    """RunDirError unless the folder ``out`` (if any) is empty or an earlier cross-corpus
    output (:func:`check_cross_corpus_destination`), naming what it holds."""
    if not out.is_dir() or not any(p.name != CLAIM_LOCK for p in out.iterdir()):
        return
    metrics, _ = run_folder_lacks(out)
    protocol = (metrics or {}).get("protocol")
    if isinstance(protocol, str) and protocol.startswith(CROSS_CORPUS):
        return
    held = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
                            if p.name != CLAIM_LOCK))
    what = f"an emovox run of protocol {protocol}" if protocol else "an unfinished emovox run"
    raise RunDirError(f"{out} holds {what} ({held}), not an earlier output of `evaluate "
                      "--artifact`; refusing to replace it (choose another --out, or remove "
                      "it yourself)")


def evaluate_artifact(
    artifact: Path | None,
    corpus: str,
    root: Path,
    out_dir: Path | None,
    *,
    workers: int = 2,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    speaker_pattern: str | None = None,
) -> CrossCorpusResult:
    """Predict every labelled clip of ``corpus`` under ``root`` with the model at
    ``artifact`` (None = bundled) and score it on the shared classes. ``speaker_pattern``:
    the ``folder`` reader's speaker regex (:class:`~emovox.config.DataConfig`).

    ``out_dir`` (None: ``runs/crosscorpus-<corpus>-<time>``, :func:`default_run_dir`) is
    checked whole before the model is loaded or a clip read
    (:func:`check_cross_corpus_destination`, its parent made, another process writing it:
    a file as its parent was refused only after the scoring, review, stop 56), and is
    never the model folder or ``root`` (:func:`_not_an_input`)."""
    from emovox.serving.predictor import Predictor

    t0 = time.perf_counter()
    given = out_dir is not None
    out_dir = Path(out_dir) if out_dir is not None else default_run_dir(f"crosscorpus-{corpus}")
    _not_an_input(out_dir, artifact, root, given)
    check_cross_corpus_destination(out_dir)
    if speaker_pattern is not None and not reader_options(corpus, speaker_pattern):
        raise ConfigError(SPEAKER_PATTERN_FOLDER_ONLY)
    with staged_run_dir(out_dir, check=_earlier_output) as stage:
        predictor = Predictor.from_artifact(artifact, backend=backend)
        classes = _model_classes(predictor, corpus)
        utts, classes = _scanned(corpus, root, classes, speaker_pattern)
        independent, heard = _speakers_unheard(predictor, utts)
        same = heard_clips(predictor.artifact_meta.trained_on, [u.path for u in utts]) or []
        if same:  # the model's own clips under other speaker ids: a manifest (stop 35)
            log.warning("%d of the %d evaluated clips are byte for byte clips the model "
                        "was trained on (e.g. %s): the result is not a test on unheard data",
                        len(same), len(utts), utts[same[0]].path.name)
            independent = False
        results = _scores(predictor, utts, [predictor.labels.index(c) for c in classes],
                          workers, progress)
        ok = [i for i, (p, _) in enumerate(results) if p is not None]
        proba = np.stack([results[i][0] for i in ok])
        proba = proba / np.maximum(proba.sum(1, keepdims=True), 1e-12)
        y_true = np.array([classes.index(utts[i].emotion.value) for i in ok])
        m = compute_metrics(y_true, proba.argmax(1), classes)
        res = CrossCorpusResult(corpus, classes, m, len(utts), len(utts) - len(ok),
                                time.perf_counter() - t0, out_dir)
        metrics = {
            "protocol": f"{CROSS_CORPUS}{corpus}", "model_id": predictor.model_id,
            "speaker_independent": independent, "classes": classes, "pooled": m.to_dict(),
            **({"speakers_heard_in_training": heard} if heard else {}),
            **({"clips_heard_in_training": len(same)} if same else {}),
            "n_files": res.n_files, "n_errors": res.n_errors, "seconds": res.seconds,
        }
        title = f"{predictor.model_id} on {corpus}"
        write_run(stage, metrics, _predictions(utts, results, classes), pooled=m,
                  titles=(f"{title}: UA {m.ua:.1f}", f"{title}: recall per class"))
    return res


def _not_an_input(out: Path, artifact: Path | None, root: Path, given: bool) -> None:
    """ConfigError when ``out`` (``given``: by --out, else the default run folder) is, lies
    inside or holds the model folder ``artifact``, or is or holds the corpus ``root``
    (review, stop 57). A run folder inside the corpus replaces nothing (the readers skip
    files that are not audio): ``evaluate --artifact bundled --data .``, run in the corpus
    folder, was refused for a default --out the user never gave (review, stop 57)."""
    model = f"the model folder {artifact}" if artifact else "the bundled model's folder"
    refuse_out_among(out, [(resolve_model_path(artifact), model)],
                     ": a run written there would mix emovox's output into files that are "
                     "not its own", given=given)
    refuse_out_among(out, [(root, f"the corpus {root} (--data)")],
                     ": the run folder would replace it whole, and the corpus with it",
                     inside=False, given=given)


def _scanned(corpus: str, root: Path, classes: list[str], speaker_pattern: str | None
             ) -> tuple[list[Utterance], list[str]]:
    """The labelled clips of ``corpus`` under ``root`` of the model's ``classes`` present
    there, and those classes; ConfigError when fewer than two are left."""
    scan = scan_corpus(corpus, root, detect_duplicates=False,
                       **reader_options(corpus, speaker_pattern))
    if not scan.labelled:
        raise ConfigError(f"no labelled clips found under {root}: {reader_hint(root, corpus)}")
    present = {u.emotion.value for u in scan.labelled}
    classes = [c for c in classes if c in present]  # shared AND present in this data
    if len(classes) < 2:
        raise ConfigError(f"{root} holds fewer than two classes the model knows")
    utts = [u for u in scan.labelled if u.emotion.value in classes]
    if not utts:
        raise ConfigError(f"no clips of the shared classes {classes} under {root}")
    return utts, classes


def _scores(predictor: Any, utts: list[Utterance], cols: list[int], workers: int,
            progress: Callable[[int, int], None] | None
            ) -> list[tuple[np.ndarray | None, str | None]]:
    """Each clip's probabilities over the columns ``cols`` (or its error), every clip as in
    cross-validation; ConfigError when none could be scored."""
    def one(u: Utterance) -> tuple[np.ndarray | None, str | None]:
        try:
            return np.asarray(predictor.clip_probabilities(u.path))[cols], None
        except EmovoxError as exc:
            return None, str(exc)

    results: list[tuple[np.ndarray | None, str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, r in enumerate(pool.map(one, utts)):
            results.append(r)
            if progress:
                progress(i + 1, len(utts))
    # none scored: it was numpy's "need at least one array to stack" (code review, stop 47)
    if not any(p is not None for p, _ in results):
        raise ConfigError(f"none of the {len(utts)} clips could be scored (the first: "
                          f"{results[0][1]})" if utts else "no clips to score")
    return results


def _speakers_unheard(predictor: Any, utts: list[Utterance]) -> tuple[bool, list[str]]:
    """``(speaker-independent?, the evaluated speakers the model was trained on)``: from
    the model folder's ``trained_on.speakers``; a folder that does not list them is not
    called speaker-independent (audit, stop 31: the bundled model scored 100 % UA on one of
    its own training actors under that name)."""
    on = predictor.artifact_meta.trained_on or {}
    # a distilled model heard what its teachers heard (research audit, stop 51); a model
    # that lists no speakers of its own is unknown whatever its teachers list (review)
    own = set(on.get("speakers") or [])
    trained = own | set(on.get("teacher_speakers") or [])
    heard = sorted({u.speaker for u in utts} & trained)
    unknown = sorted(s for s in {u.speaker for u in utts} | trained if is_unknown_speaker(s))
    if not own:
        log.warning("the model folder does not list its training speakers: the result is "
                    "not called speaker-independent")
        return False, heard
    elif on.get("teachers_unlisted"):
        log.warning("the model was distilled from teachers that do not list their training "
                    "speakers or clips (%s): the result is not called speaker-independent",
                    ", ".join(map(str, on["teachers_unlisted"])))
        return False, heard
    elif unknown:  # own-data QA, stop 33: the training clips themselves scored 91 % UA
        log.warning("speakers are unknown (%s): whether the model heard these voices cannot "
                    "be told, so the result is not called speaker-independent",
                    ", ".join(unknown))
        return False, heard
    elif heard:
        log.warning("%d of the evaluated speakers were in the model's training data (%s): "
                    "the result is not speaker-independent", len(heard),
                    ", ".join(heard[:5]) + (", ..." if len(heard) > 5 else ""))
    return not heard, heard


def _predictions(
    utts: list[Utterance], results: list[tuple[np.ndarray | None, str | None]],
    classes: list[str],
) -> Predictions:
    rows: list[Prediction] = []
    for u, (p, err) in zip(utts, results, strict=True):
        row = Prediction(str(u.path), u.speaker, u.emotion.value, corpus=u.corpus)
        if p is None:
            row.error = err or "unreadable"
        else:
            p = p / max(p.sum(), 1e-12)
            row.pred, row.proba = classes[int(p.argmax())], tuple(float(v) for v in p)
        rows.append(row)
    return Predictions(list(classes), rows)


__all__ = ["CROSS_CORPUS", "CrossCorpusResult", "check_cross_corpus_destination",
           "evaluate_artifact", "shared_label_set"]
