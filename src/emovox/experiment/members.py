"""What an ensemble records about the training of its members (``trained_on`` of its
``model.json``): their data when they share it, else each member's and the corpora and
emotions they heard between them, their augmentation, environment and training time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from emovox.artifact.clips import CLIP_DIGESTS, TEACHER_DIGESTS, clip_digests, trained_digests
from emovox.augment import augment_summary
from emovox.corpora.base import speakers_text
from emovox.experiment.recipe import own_data

__all__ = ["ensemble_trained_on"]


def _summed(ons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Members on different data: the clips of each corpus and of each emotion summed over
    them (a clip two members heard counts twice), so that the card names every corpus and
    its licence and the emotions no member heard (an ensemble of members trained on one's
    own data was carded as RAVDESS's, without "never seen": QA, stop 37). Emotions only
    when every member counted them."""
    corpora: dict[str, int] = {}
    emotions: dict[str, int] = {}
    for t in ons:
        for c, n in (t.get("corpora") or {t.get("corpus", "?"): t.get("clips")}).items():
            corpora[c] = corpora.get(c, 0) + int(n or 0)
        for e, n in (t.get("emotions") or {}).items():
            emotions[e] = emotions.get(e, 0) + int(n)
    known = all(t.get("emotions") is not None for t in ons)
    return {"corpora": corpora, **({"emotions": emotions} if known and emotions else {})}


def _own_data_of(config: Any) -> list[str]:
    """``READER=NAME`` of one's own data a member's config read (none when unreadable)."""
    try:
        return own_data(config)
    except (KeyError, TypeError, AttributeError):
        return []


def _data_of(trained_on: dict[str, Any]) -> tuple[Any, ...]:
    """What a member was trained on, for comparing members: clips, speakers, corpora."""
    return (trained_on.get("clips"), tuple(trained_on.get("speakers") or ()),
            trained_on.get("corpus"), tuple(trained_on.get("channels") or ()))


def _members_teachers(ons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What distilled members' teachers heard, over every member (``teacher_speakers``,
    ``teacher_clip_digests``, ``teachers_unlisted``; see
    :func:`emovox.experiment.distil.teachers_heard`): an ensemble heard it too."""
    taught = [t for t in ons if "teacher_speakers" in t or "teachers_unlisted" in t]
    if not taught:
        return {}
    digests: set[str] = set()
    for t in taught:
        digests |= trained_digests({CLIP_DIGESTS: t.get(TEACHER_DIGESTS)}) or set()
    unlisted = sorted({str(u) for t in taught for u in t.get("teachers_unlisted") or []})
    return {"teacher_speakers": sorted({str(s) for t in taught
                                        for s in t.get("teacher_speakers") or []}),
            TEACHER_DIGESTS: clip_digests(digests)[CLIP_DIGESTS],
            **({"teachers_unlisted": unlisted} if unlisted else {})}


def ensemble_trained_on(loaded: Sequence[tuple[Any, Any]]) -> dict[str, Any]:
    """An ensemble's ``trained_on``: its first member's data, every member's name, training
    augmentation and environment, and their training seconds summed."""
    augs = [augment_summary((m.experiment_config or {}).get("augment")) for _, m in loaded]
    ons = [m.trained_on or {} for _, m in loaded]  # a CV fold model records none
    envs = [t.get("environment") for t in ons]
    # each member early-stopped on its own validation speakers: not one list (stop 32);
    # the data only when every member says (a fold model's first place gave "0 speakers")
    private = ("augment", "environment", "validation_speakers", "validation_clips", "seconds")
    known = all(t.get("clips") is not None for t in ons)
    same = known and all(_data_of(t) == _data_of(ons[0]) for t in ons)
    data = ons[0] if same else {}  # members on other data: each said (re-check 3, stop 32)
    differ = ({"member_data": [f"{m.name}: {t['clips']} clips of "
                               f"{speakers_text(t.get('speakers') or [])} "
                               f"({t.get('corpus', '?')})" for (_, m), t in
                               zip(loaded, ons, strict=True)], **_summed(ons)}
              if known and not same else {})
    heard = [trained_digests(t) for t in ons]  # members on other data: every clip any heard
    if differ and all(d is not None for d in heard):  # (re-check, stop 35)
        differ.update(clip_digests(set().union(*(d for d in heard if d))))
    own = sorted({o for _, m in loaded for o in _own_data_of(m.experiment_config)})
    return {**{k: v for k, v in data.items() if k not in private}, **differ,
            **_members_teachers(ons),
            **({"own_data": own} if own else {}),
            "members": [m.name for _, m in loaded],
            **({"member_augment": augs} if any(augs) else {}),
            **({"member_environment": envs} if any(envs) else {}),
            # the sum only when every member says how long it took (a member split back out
            # of an ensemble does not): a partial sum would understate the training time
            **({"seconds": round(sum(float(t["seconds"]) for t in ons), 1)}
               if all("seconds" in t for t in ons) else {})}
