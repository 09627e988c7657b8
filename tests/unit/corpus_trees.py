"""Tiny fake corpus trees for the corpus-reader tests: file names matter, contents are a few
unique bytes each (so duplicate detection sees distinct files unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

from emovox.corpora import CorpusScan

_counter = 0


def make(root: Path, rel: str, content: bytes | None = None) -> Path:
    """Create ``root/rel`` holding ``content`` (default: bytes unique to this file)."""
    global _counter
    _counter += 1
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content if content is not None else f"RIFF{_counter}:{rel}".encode())
    return p


def by_name(scan: CorpusScan) -> dict[str, object]:
    return {u.path.name: u for u in scan.utterances}


def skipped_names(scan: CorpusScan) -> dict[str, str]:
    return {p.name: why for p, why in scan.skipped}

