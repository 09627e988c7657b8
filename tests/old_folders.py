"""Model folders as emovox wrote them before a format addition, for the tests of what still
loads. Importable as ``old_folders`` from every test folder (``tests/`` is on ``sys.path``
through its ``conftest.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.numpy import load_file, save_file

from emovox.artifact import MODEL_JSON, WEIGHTS_FILE, file_digest


def saved_before_network_digest(folder: Path) -> Path:
    """``folder`` (a network model folder, changed in place: give a copy) as a writer before
    the network digest left it: ``weights.safetensors`` without header metadata, and
    ``model.json``'s ``digests`` naming that file."""
    f = Path(folder) / WEIGHTS_FILE
    save_file(load_file(str(f)), str(f))
    doc = json.loads((Path(folder) / MODEL_JSON).read_text())
    if WEIGHTS_FILE in doc.get("digests", {}):
        doc["digests"][WEIGHTS_FILE] = file_digest(f)
    (Path(folder) / MODEL_JSON).write_text(json.dumps(doc, indent=2))
    return Path(folder)
