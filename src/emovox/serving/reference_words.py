"""What is said about speaker-adaptation reference clips, in a reference's words (a review as
a user, stop 54): the decoder and the duration limit speak of a clip to be answered, and a
reference clip is not answered but used, and not read with ``emovox timeline`` when it is
too long but cut. Shared by ``predict --reference`` (:func:`~emovox.serving.adapt.
reference_prior`) and the uploaded references of the API and the web app
(:mod:`emovox.serving.adapt_uploads`), so the three say the same."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emovox.audio import TOO_LONG_ADVICE, faint_note
from emovox.features.vad import NoSpeechReason
from emovox.serving.inputs import (
    AUDIO_NAMES,
    InputLinks,
    again_text,
    broken_link_text,
    link_text,
    others_text,
    printable_path,
)

__all__ = ["REFERENCE_TOO_LONG", "UPLOADED_REFERENCE_TOO_LONG", "folders_warning",
           "link_notes", "no_speech_skip", "reference_words"]

#: what a reference clip over the duration limit is told by ``predict --reference``: the
#: limit's advice (:data:`~emovox.audio.TOO_LONG_ADVICE`) without `emovox timeline`, which
#: reads a long recording, not a reference; cutting first, and the limit is the user's own
REFERENCE_TOO_LONG = ("A reference clip must be under the limit: cut it into shorter clips, "
                      "or raise the limit (--max-duration).")
#: the same, of an uploaded reference (the API, the web app): the limit is the server's
UPLOADED_REFERENCE_TOO_LONG = ("A reference clip must be under the limit: cut it into shorter "
                               "clips (the limit is the server's).")

#: the decoder's "answered on the 0.77 s before that" / "answered on what is there"
_ANSWERED = re.compile(r"answered on (the \S+ s before that|what is there)")

#: folders named in :func:`folders_warning`
_FOLDERS_NAMED = 2


def reference_words(text: str, *, uploaded: bool = False) -> str:
    """A decoder's note or a refusal about a reference clip in a reference's words: "only
    the 0.77 s before that is used", not "answered on the 0.77 s before that"; the duration
    limit's advice is to cut the clip, then to raise the limit (:data:`REFERENCE_TOO_LONG`),
    or, ``uploaded``, only to cut it (:data:`UPLOADED_REFERENCE_TOO_LONG`)."""
    advice = UPLOADED_REFERENCE_TOO_LONG if uploaded else REFERENCE_TOO_LONG
    return _ANSWERED.sub(r"only \1 is used", text.replace(TOO_LONG_ADVICE, advice))


def _is_faint(note: str) -> bool:
    """Whether ``note`` is the decoder's near-silence note (:func:`~emovox.audio.faint_note`),
    whose advice (record closer to the microphone) does not fit a clip cut short, and which
    a skip for no speech says already."""
    head = note.partition(": ")[0]
    return note in (faint_note(head), faint_note(head, digital=True))


def _without_name(note: str, name: str) -> str:
    head, _, rest = note.partition(": ")
    return rest if rest and Path(head).name == name else note


def no_speech_skip(name: str, pred: Any) -> str:
    """Why a reference clip whose answer (``pred``: a ``no_speech``
    :class:`~emovox.serving.answer.Prediction`) holds no speech is skipped: its reason in the
    words ``predict`` shows (``reason_message``; it said the code, "no speech
    (steady_sound)"), then the decoder's notes (a file cut short...) but the near-silence
    one, each in a reference's words."""
    words = pred.reason_message or _reason_words(pred.reason)
    notes = [reference_words(_without_name(n, name)).rstrip(".")
             for n in getattr(pred, "warnings", ()) if not _is_faint(n)]
    return "; ".join([f"{name}: {words}", *notes])


def _reason_words(reason: str | None) -> str:
    try:
        return NoSpeechReason(reason).message
    except ValueError:
        return "no speech"


def folders_warning(files: Sequence[Path]) -> str | None:
    """The warning for reference clips (``files``: those used) from more than one folder
    (``--reference`` reads subfolders: another speaker's clips there were taken as the
    same speaker's without a word), naming the first few folders; None for one folder."""
    folders = sorted({printable_path(f.parent) for f in files})
    if len(folders) < 2:
        return None
    named = ", ".join(folders[:_FOLDERS_NAMED])
    return (f"the reference clips come from {len(folders)} folders (e.g. {named}): they are "
            "taken as one speaker's")


def link_notes(met: InputLinks) -> list[str]:
    """What the walk of a reference folder met through symbolic links, in a reference's
    words (``batch``'s said each file was "answered under its resolved path", and they
    went to the log only: code review, stop 54), for the prior's warnings: one note for
    each kind, the first of each named."""
    folders = met.folders
    notes: list[str] = []
    if folders.followed.count:
        notes.append(f"{folders.followed.count} folder link(s) followed in the reference "
                     f"folder (e.g. {link_text(folders.followed.first[0])}): their clips are "
                     "taken as the same speaker's")
    again = folders.loops.count + folders.again.count
    if again:
        first = (folders.loops.first or folders.again.first)[0]
        notes.append(f"{again} folder(s) reached again through a folder link in the "
                     f"reference folder (e.g. {again_text(first)}): not read again, so each "
                     "clip counts once")
    if met.first_twice is not None:
        reached, listed = (printable_path(p) for p in met.first_twice)
        notes.append(f"{met.twice} clip(s) of the reference folder reached a second way (a "
                     f"link; e.g. {reached} and {listed} are one clip): each counts once")
    if folders.broken.count:
        notes.append(f"{folders.broken.count} symbolic link(s) to nothing in the reference "
                     f"folder skipped (e.g. {broken_link_text(folders.broken.first[0])})")
    if met.outside.count:
        notes.append(f"{met.outside.count} clip(s) in the reference folder are links to files "
                     f"out of it (e.g. {link_text(met.outside.first[0])}): each is used, as "
                     "the same speaker's")
    if met.others.count:  # said in batch's words, "not read" (a review, stop 54)
        notes.append(f"{met.others.count} other file(s) in the reference folder not used, by "
                     f"their names (e.g. {others_text(met.others)}): a reference clip needs "
                     f"{AUDIO_NAMES}")
    return notes
