"""``--data`` items of the research commands -> a :class:`~emovox.config.DataConfig`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from emovox.config import DataConfig

__all__ = ["data_config"]


def _is_reader(name: str) -> bool:
    """Is ``name`` a corpus reader, in any spelling the readers accept (``RAVDESS``)?"""
    from emovox.corpora import get_reader

    try:
        return get_reader(name) is not None
    except ValueError:
        return False


def data_config(items: list[str], corpus: str, **kw: Any) -> DataConfig:
    """``--data`` items -> a :class:`DataConfig`: ``NAME=DIR`` when NAME is a corpus reader,
    else a folder read with ``corpus``; the first is ``corpus``/``root``, the others go to
    ``corpora``. ValueError for no item or the same corpus twice. Each root is recorded
    absolute (:func:`_recorded`)."""
    from emovox.corpora import CORPORA, get_reader

    sources: list[tuple[str, str]] = []
    for item in items:
        if "=" in item and Path(item).exists():  # a folder whose name holds '=' (QA stop 32)
            name, _, root = item.partition("=")
            if _is_reader(name) and root and Path(root).exists():  # re-check, stop 32
                raise ValueError(f"--data {item} is both a folder and the corpus {name} at "
                                 f"{root}: write ./{item} for the folder, or {name}=./{root} "
                                 "for the corpus")
            sources.append((corpus, item))
            continue
        name, sep, root = item.partition("=")
        try:
            named = bool(sep) and get_reader(name) is not None
        except ValueError:
            named = False
        # NAME=DIR (a bare name before '='), not a folder whose path holds '='
        if sep and re.fullmatch(r"[\w-]*", name) and not Path(item).exists():
            if not named:
                raise ValueError(f"--data {item}: {name!r} is not a corpus reader (known: "
                                 f"{', '.join(sorted(CORPORA))}); give NAME=DIR or a folder")
            if not root.strip():
                raise ValueError(f"--data {item}: no directory after '='")
        sources.append((name, root) if named and root.strip() else (corpus, item))
    if not sources:
        raise ValueError("no data directory given (--data DIR)")
    names = [get_reader(n).NAME for n, _ in sources]
    if len(set(names)) < len(names):
        raise ValueError(f"the same corpus is given twice in --data: {', '.join(names)}")
    (first, root), rest = sources[0], sources[1:]
    # the further roots stripped first, as DataConfig.sources reads them
    return DataConfig(corpus=first, root=_recorded(root),
                      corpora=tuple(f"{n}={_recorded(r.strip())}" for n, r in rest), **kw)


def _recorded(root: str) -> str:
    """``root`` as a run's config.yaml records it: absolute. Written as given, ``--data c4``
    and ``--data $PWD/c4`` named one folder ``c4`` and ``.../c4``, whose last two parts
    (what merge and --teacher compare) differ: parts of one recipe were "another
    configuration (data.root)" (review, stop 52). abspath, not resolve(): ".." is
    normalised while a symlinked folder keeps the name it was given, as manifests do."""
    return os.path.abspath(root)
