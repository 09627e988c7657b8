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
from emovox.corpora import (
    SPEAKER_PATTERN_FOLDER_ONLY,
    corpus_label_map,
    reader_options,
    scan_corpus,
)
from emovox.corpora.base import Utterance, is_unknown_speaker
from emovox.corpora.detect import reader_hint
from emovox.errors import ConfigError, EmovoxError
from emovox.experiment.rundest import check_run_destination, staged_run_dir
from emovox.experiment.rundir import (
    Prediction,
    Predictions,
    write_run,
)
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


def evaluate_artifact(
    artifact: Path | None,
    corpus: str,
    root: Path,
    out_dir: Path,
    *,
    workers: int = 2,
    backend: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    speaker_pattern: str | None = None,
) -> CrossCorpusResult:
    """Predict every labelled clip of ``corpus`` under ``root`` with the model at
    ``artifact`` (None = bundled) and score it on the shared classes. ``speaker_pattern``:
    the ``folder`` reader's speaker regex (:class:`~emovox.config.DataConfig`)."""
    from emovox.serving.predictor import Predictor

    t0 = time.perf_counter()
    check_run_destination(out_dir)
    if speaker_pattern is not None and not reader_options(corpus, speaker_pattern):
        raise ConfigError(SPEAKER_PATTERN_FOLDER_ONLY)
    predictor = Predictor.from_artifact(artifact, backend=backend)
    classes = _model_classes(predictor, corpus)
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
    cols = [predictor.labels.index(c) for c in classes]
    independent, heard = _speakers_unheard(predictor, utts)
    same = heard_clips(predictor.artifact_meta.trained_on, [u.path for u in utts]) or []
    if same:  # the model's own clips under other speaker ids: a manifest, a folder (stop 35)
        log.warning("%d of the %d evaluated clips are byte for byte clips the model was "
                    "trained on (e.g. %s): the result is not a test on unheard data",
                    len(same), len(utts), utts[same[0]].path.name)
        independent = False

    def one(u: Utterance) -> tuple[np.ndarray | None, str | None]:
        try:
            p = predictor.clip_probabilities(u.path)  # every clip, as in cross-validation
            return np.asarray(p)[cols], None
        except EmovoxError as exc:
            return None, str(exc)

    results: list[tuple[np.ndarray | None, str | None]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, r in enumerate(pool.map(one, utts)):
            results.append(r)
            if progress:
                progress(i + 1, len(utts))
    ok = [i for i, (p, _) in enumerate(results) if p is not None]
    if not ok:  # it was numpy's "need at least one array to stack" (code review, stop 47)
        raise ConfigError(f"none of the {len(utts)} clips could be scored (the first: "
                          f"{results[0][1]})" if utts else "no clips to score")
    proba = np.stack([results[i][0] for i in ok])
    proba = proba / np.maximum(proba.sum(1, keepdims=True), 1e-12)
    y_true = np.array([classes.index(utts[i].emotion.value) for i in ok])
    pred = proba.argmax(1)
    m = compute_metrics(y_true, pred, classes)

    out_dir = Path(out_dir)
    res = CrossCorpusResult(corpus, classes, m, len(utts), len(utts) - len(ok),
                            time.perf_counter() - t0, out_dir)
    metrics = {
        "protocol": f"cross-corpus:{corpus}", "model_id": predictor.model_id,
        "speaker_independent": independent, "classes": classes, "pooled": m.to_dict(),
        **({"speakers_heard_in_training": heard} if heard else {}),
        **({"clips_heard_in_training": len(same)} if same else {}),
        "n_files": res.n_files, "n_errors": res.n_errors, "seconds": res.seconds,
    }
    title = f"{predictor.model_id} on {corpus}"
    with staged_run_dir(out_dir) as stage:
        write_run(stage, metrics, _predictions(utts, results, classes), pooled=m,
                  titles=(f"{title}: UA {m.ua:.1f}", f"{title}: recall per class"))
    return res


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


__all__ = ["CrossCorpusResult", "evaluate_artifact", "shared_label_set"]
