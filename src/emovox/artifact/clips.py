"""Which recordings a model was trained on, by content: ``trained_on.clip_digests`` in
``model.json``.

A model lists its training speakers by corpus id (``emovo:f1``); the same EMOVO clips read
through a CSV manifest or a folder per emotion have other speaker ids (``csv:f1``), so
``evaluate --artifact`` called a score on the model's own training clips speaker-independent
(stop 34's known limit). Each training clip's SHA-256 (of the file's bytes, the feature
cache's content id), cut to :data:`DIGEST_HEX` hex digits, is kept as one sorted string; a
clip evaluated later whose bytes are the same is found whatever its path or speaker id. A
copy re-encoded or trimmed is not (other bytes).

May import only the standard library and emovox.fileio (the artifact floor).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from emovox.fileio import file_sha256

log = logging.getLogger(__name__)

#: the key in ``trained_on``
CLIP_DIGESTS = "clip_digests"
#: the same, of the clips a distilled model's teachers heard (``train --teacher``)
TEACHER_DIGESTS = "teacher_clip_digests"
#: hex digits kept of each SHA-256: 48 bits, no chance collision among a few thousand clips
DIGEST_HEX = 12


def clip_digests(content_ids: Iterable[str]) -> dict[str, Any]:
    """``{"clip_digests": {...}}`` for ``trained_on``: the SHA-256 hex digests of the
    training clips' bytes (``content_ids``), cut to :data:`DIGEST_HEX` digits, sorted and
    joined (2,027 clips: 24 KB of ``model.json``)."""
    cut = sorted({c[:DIGEST_HEX].lower() for c in content_ids})
    return {CLIP_DIGESTS: {"algorithm": "sha256", "hex": DIGEST_HEX, "digests": "".join(cut)}}


def trained_digests(trained_on: Any) -> frozenset[str] | None:
    """The digests a model's ``trained_on`` records, or None (none recorded, or not in the
    shape :func:`clip_digests` writes: a hand-edited folder is not trusted to say more)."""
    rec = trained_on.get(CLIP_DIGESTS) if isinstance(trained_on, dict) else None
    if rec is None:
        return None
    width = rec.get("hex") if isinstance(rec, dict) else None
    text = rec.get("digests") if isinstance(rec, dict) else None
    if (not isinstance(width, int) or not 8 <= width <= 64 or not isinstance(text, str)
            or rec.get("algorithm") != "sha256" or len(text) % width
            or not re.fullmatch(r"[0-9a-f]*", text)):
        log.warning("the model's trained_on.%s is malformed: ignored", CLIP_DIGESTS)
        return None
    return frozenset(text[i:i + width] for i in range(0, len(text), width))


def heard_clips(trained_on: Any, paths: Sequence[Path]) -> list[int] | None:
    """Indices of ``paths`` whose bytes are those of one of the model's training clips, or
    of its teachers' (:data:`TEACHER_DIGESTS`); None when the model records no digests. A
    file that cannot be read is not counted."""
    digests = trained_digests(trained_on)
    if isinstance(trained_on, dict) and trained_on.get(TEACHER_DIGESTS) is not None:
        taught = trained_digests({CLIP_DIGESTS: trained_on[TEACHER_DIGESTS]})
        if taught is None:  # malformed: what the teachers heard is unknown (review, 51)
            return None
        digests = taught if digests is None else digests | taught
    if digests is None:
        return None
    widths = {len(d) for d in digests}
    heard = []
    for i, path in enumerate(paths):
        try:
            full = file_sha256(path)
            if any(full[:w] in digests for w in widths):
                heard.append(i)
        except OSError:
            continue
    return heard


def public_trained_on(trained_on: Any) -> Any:
    """``trained_on`` without the digests (what the API and the web page show)."""
    if not isinstance(trained_on, dict):
        return trained_on
    return {k: v for k, v in trained_on.items() if k not in (CLIP_DIGESTS, TEACHER_DIGESTS)}


__all__ = ["CLIP_DIGESTS", "DIGEST_HEX", "TEACHER_DIGESTS", "clip_digests", "heard_clips",
           "public_trained_on", "trained_corpora", "trained_digests"]


def trained_corpora(trained_on: Any) -> frozenset[str]:
    """The corpus names a model's ``trained_on`` records (its ``corpora`` counts), lower
    case; empty when none is recorded in that shape."""
    corpora = trained_on.get("corpora") if isinstance(trained_on, dict) else None
    return frozenset(str(c).lower() for c in corpora) if isinstance(corpora, dict) \
        else frozenset()
