"""Which corpus reader matches a tree: every registered reader is tried on the file names
(nothing is decoded, no duplicate hashing) and ranked by how many files it labels.

Used by ``emovox scan`` to suggest ``--corpus NAME`` when the chosen reader finds nothing,
and (through :func:`reader_hint`) by the error of ``evaluate``/``train`` in that case.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from emovox.corpora import CORPORA, get_reader
from emovox.corpora.base import count_noun, is_unknown_speaker
from emovox.logcontext import LogHold

log = logging.getLogger(__name__)

#: the corpus readers' loggers (``emovox.corpora.ravdess``, ...), held back while tried
_READERS_LOG = LogHold("emovox.corpora")

__all__ = ["ReaderMatch", "matching_readers", "reader_hint"]


@dataclass(frozen=True)
class ReaderMatch:
    """What reader ``name`` makes of a tree: files it labels, and known speakers."""

    name: str
    labelled: int
    speakers: int  #: speakers it names (0: unknown, e.g. the folder reader without a pattern)

    @property
    def files_text(self) -> str:
        """``"99 files of 6 speakers"``, ``"99 files of unknown speakers"`` (QA, stop 37:
        "99 files of 1 speakers" for a tree whose speakers the reader does not know)."""
        of = count_noun(self.speakers, "speaker") if self.speakers else "unknown speakers"
        return f"{count_noun(self.labelled, 'file')} of {of}"


def matching_readers(root: str | Path, *, exclude: tuple[str, ...] = ()) -> list[ReaderMatch]:
    """Readers (but ``exclude``) that label at least one file of ``root``, most files first.

    A reader that cannot read ``root`` at all (the CSV manifest reader given a folder, say)
    is left out. The readers' own log lines below ERROR are held back while they are
    tried, in this thread only (a process-wide ``setLevel`` of ``emovox.corpora`` silenced
    every other thread's meanwhile: code review, stop 56).
    """
    found: list[ReaderMatch] = []
    with _READERS_LOG.held():  # each trial logs its (irrelevant) summary
        for name, reader in CORPORA.items():
            if name in exclude:
                continue
            try:
                scan = reader.scan(Path(root), detect_duplicates=False)
            except (OSError, ValueError) as exc:
                log.debug("reader %s cannot read %s: %s", name, root, exc)
                continue
            labelled = scan.labelled
            if labelled:
                known = {u.speaker for u in labelled if not is_unknown_speaker(u.speaker)}
                found.append(ReaderMatch(name, len(labelled), len(known)))
    return sorted(found, key=lambda m: -m.labelled)


def reader_hint(root: str | Path, corpus: str) -> str:
    """Why the reader ``corpus`` found nothing under ``root`` and what to use instead: the
    reader that labels most files there (``--corpus NAME``), or, when none does, how to read
    the tree (``--corpus folder`` or a CSV manifest with ``--corpus csv``)."""
    name = get_reader(corpus).NAME
    if name == "csv":  # it was read as a manifest: the rows' notes say why (QA, stop 39)
        return ("no row of the manifest names a readable audio file with a label (see the "
                "skipped rows above; paths are relative to the CSV's folder)")
    matches = matching_readers(root, exclude=(name,))
    if not matches:
        return (f"the {name} reader labels no file there, nor does any other reader; a tree "
                "with one folder per emotion reads with --corpus folder, any other with a CSV "
                "manifest (path,label[,speaker]) and --corpus csv")
    best = matches[0]
    others = ", ".join(f"{m.name} ({m.labelled})" for m in matches[1:])
    return (f"the {name} reader labels no file there, but the {best.name} reader labels "
            f"{best.files_text}: "
            f"use --corpus {best.name} (or --data {best.name}={root})"
            + (f" (also: {others})" if others else ""))
