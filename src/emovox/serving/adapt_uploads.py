"""Speaker adaptation of an uploaded clip by uploaded reference clips of the same speaker:
what ``POST /v1/predict`` with ``references`` and the web app's reference uploader share
(the CLI's ``predict --reference DIR`` reads a folder instead: :func:`~emovox.serving.adapt.
reference_prior`; both end in :func:`~emovox.serving.adapt.prior_from_references`, so the
three give the same prior, record and warnings).

Bounded like one upload, so a request with references costs at most about two uploads:

* at most :data:`MAX_REFERENCES` reference clips (:class:`TooManyReferences`, before
  anything is read);
* all of them together at most ``max_bytes`` (:class:`~emovox.serving.uploads.UploadTooLarge`,
  before anything is read) and ``max_duration`` seconds of audio (a clip that would pass the
  total is skipped with a warning);
* each is validated like the main upload (size, format, duration); a clip that fails or
  holds no speech is skipped with a warning (``adaptation.warnings`` of the answer);
* fewer than :data:`~emovox.adaptation.MIN_REFERENCE_CLIPS` usable clips is
  :class:`~emovox.serving.adapt.TooFewReferences`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from emovox.errors import AudioTooLong, EmovoxError
from emovox.fileio import stream_sha256
from emovox.serving.adapt import (
    AdaptationError,
    RepeatedClips,
    SpeakerPrior,
    adapt_prediction,
    adapt_timeline,
    mark_own_reference,
    prior_from_references,
)
from emovox.serving.answer import Prediction
from emovox.serving.reference_words import no_speech_skip, reference_words
from emovox.serving.timeline import Timeline
from emovox.serving.uploads import UploadTooLarge, display_name, over_limit, scrub

log = logging.getLogger(__name__)

__all__ = ["MAX_REFERENCES", "UPLOAD_GROUP", "AdaptedAnswer", "Reference", "TooManyReferences",
           "adapt_to_uploads", "adapted_copy", "check_references",
           "predict_with_references", "prior_from_uploads"]

#: most reference clips one request may carry (16 are recommended, 3 the minimum)
MAX_REFERENCES = 32
#: ``adaptation.group`` of answers adapted to uploaded references
UPLOAD_GROUP = "uploaded references"

#: one reference clip: its bytes (or a file object) and the client's file name
Reference = tuple[bytes | BinaryIO, str | None]


class TooManyReferences(AdaptationError):
    """More reference clips than :data:`MAX_REFERENCES`."""


@dataclass(frozen=True)
class AdaptedAnswer:
    """An upload's answer as the model heard it and adapted to its speaker.

    Attributes:
        plain: the unadapted answer.
        adapted: the adapted answer (with its ``adaptation`` record); a ``no_speech`` answer
            is never adapted: it is ``plain`` with a not-applied record and the warnings.
        prior: the speaker's prior, with its warnings.
    """

    plain: Prediction
    adapted: Prediction
    prior: SpeakerPrior


def _size(data: bytes | BinaryIO) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    pos = data.tell()
    data.seek(0, os.SEEK_END)
    size = data.tell()
    data.seek(pos)
    return size


def check_references(sizes: Sequence[int | None], *, max_bytes: int | None = None,
                     max_references: int = MAX_REFERENCES) -> None:
    """The checks made before any reference is read.

    Raises:
        TooManyReferences: more than ``max_references`` clips.
        UploadTooLarge: their sizes (``None``: unknown, not counted) add up to more than
            ``max_bytes``.
    """
    if len(sizes) > max_references:
        raise TooManyReferences(f"{len(sizes)} reference clips: at most {max_references} "
                                "are accepted (16 are enough)")
    total = sum(s for s in sizes if s)
    if max_bytes is not None and total > max_bytes:
        what = "the reference clip is" if len(sizes) == 1 else \
            f"the {len(sizes)} reference clips together are"
        size, limit = over_limit(total, max_bytes)
        raise UploadTooLarge(f"{what} {size}, larger than the {limit} upload limit (the limit of "
                             "one upload holds for all references together): send fewer, "
                             "shorter or compressed clips")


def _why(name: str, exc: BaseException) -> str:
    msg = scrub(str(exc), name) if isinstance(exc, EmovoxError) else "could not be read"
    return msg if msg.startswith(f"{name}:") else f"{name}: {msg}"


def prior_from_uploads(predictor: Any, references: Sequence[Reference], *,
                       max_bytes: int | None = None, max_duration: float | None = None,
                       max_references: int = MAX_REFERENCES) -> SpeakerPrior:
    """The speaker's prior from uploaded reference clips (each predicted like an upload with
    :func:`~emovox.serving.service.predict_upload`).

    Raises:
        TooManyReferences, UploadTooLarge: see :func:`check_references`.
        TooFewReferences: fewer than 3 clips could be read and hold speech.
    """
    from emovox.serving.service import predict_upload

    check_references([_size(d) for d, _ in references], max_bytes=max_bytes,
                     max_references=max_references)
    left = max_duration  # seconds of audio the references may still use
    usable: list[Prediction] = []
    skipped: list[str] = []
    repeated, used = RepeatedClips(), set()
    for data, filename in references:
        name = display_name(filename)
        repeat = repeated.repeat_of(name, digest := stream_sha256(data))
        if repeat is not None:
            skipped.append(repeat)
            continue
        try:
            p = predict_upload(predictor, data, filename, max_bytes=max_bytes,
                               max_duration=left)
        except AudioTooLong as exc:  # alone: the limit is the server's, so the advice is
            # to cut the clip, not to raise the limit (code review, stop 54)
            skipped.append(f"{name}: the reference clips together are longer than the "
                           f"{max_duration:g} s limit" if left != max_duration
                           else reference_words(_why(name, exc), uploaded=True))
            continue
        except EmovoxError as exc:
            skipped.append(_why(name, exc))
            continue
        except Exception as exc:  # a bug or an odd decoder failure: logged, not shown
            log.exception("reference clip %s failed", name)
            skipped.append(_why(name, exc))
            continue
        if left is not None:
            left = max(0.0, left - float(p.duration))
        if p.probabilities is None:
            skipped.append(no_speech_skip(name, p))  # in words, as predict says it (54)
        else:
            usable.append(p)
            used.add(digest)
    return prior_from_references(usable, skipped, predictor.labels, group=UPLOAD_GROUP,
                                 what="uploaded references", offered=len(references),
                                 digests=frozenset(used))


def predict_with_references(predictor: Any, data: bytes | BinaryIO, filename: str | None,
                            references: Sequence[Reference], *,
                            max_bytes: int | None = None, max_duration: float | None = None,
                            max_references: int = MAX_REFERENCES) -> AdaptedAnswer:
    """The upload's answer, and that answer adapted to the speaker of ``references``.

    Raises:
        TooManyReferences, UploadTooLarge: checked before anything is read.
        UploadTooLarge, emovox.errors.AudioError: the main upload (as
            :func:`~emovox.serving.service.predict_upload`).
        TooFewReferences: fewer than 3 usable reference clips.
    """
    from emovox.serving.service import predict_upload

    check_references([_size(d) for d, _ in references], max_bytes=max_bytes,
                     max_references=max_references)
    plain = predict_upload(predictor, data, filename, max_bytes=max_bytes,
                           max_duration=max_duration)
    return adapt_to_uploads(predictor, plain, references, max_bytes=max_bytes,
                            max_duration=max_duration, max_references=max_references,
                            digest=stream_sha256(data))


def adapt_to_uploads(predictor: Any, plain: Prediction, references: Sequence[Reference], *,
                     max_bytes: int | None = None, max_duration: float | None = None,
                     max_references: int = MAX_REFERENCES, digest: str | None = None
                     ) -> AdaptedAnswer:
    """An answer already given (``plain``) adapted to the speaker of ``references`` (the
    web app, which has analysed the clip already); ``digest``: the SHA-256 of the clip's
    bytes, to warn when it is one of the references. Raises as :func:`prior_from_uploads`."""
    sp = prior_from_uploads(predictor, references, max_bytes=max_bytes,
                            max_duration=max_duration, max_references=max_references)
    adapted = adapt_prediction(plain, sp)
    if digest is not None:
        adapted = mark_own_reference(adapted, digest, sp)
    return AdaptedAnswer(plain, adapted, sp)


def adapted_copy(tl: Timeline, labels: Sequence[str]) -> Timeline:
    """A copy of ``tl`` adapted to the recording's own speaker
    (:func:`~emovox.serving.adapt.adapt_timeline`); ``tl`` is left as it is."""
    return adapt_timeline(copy.deepcopy(tl), labels)
