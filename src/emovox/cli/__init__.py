"""The ``emovox`` command line, one module per command group, rendering apart from logic.

Owns the command line: :mod:`.app` (the Typer app, ``--version``, command registration,
``main``), :mod:`.common` (exit codes, error -> exit code mapping, logging set-up, shared
option types), :mod:`.research` (evaluate, scan, report, fuse, models, train, export;
their ``--data`` items: :mod:`.data_args`; their options: :mod:`.research_opts`),
:mod:`.rescore` (rescore), :mod:`.product` (predict, batch, timeline), :mod:`.live`
(listen), :mod:`.servers` (app, serve), :mod:`.names` (bundled model and architecture
names, "did you mean"),
:mod:`.truth` (``predict --truth``: the label of RAVDESS-named files), :mod:`.render`
(every console, table and summary) and :mod:`.bars` (every progress bar). Commands parse
options, call the library and hand its results to :mod:`.render`; domain logic lives in
the layers below.

May import every lower layer (serving, experiment, training, artifact, models, corpora,
config, errors, ...) and api/web (to start them), but heavy libraries (torch, librosa,
sklearn, streamlit, fastapi, uvicorn) only inside the command that needs them, so
``emovox --help`` and ``emovox models`` stay light. Nothing imports this package except the
console script (``emovox = "emovox.cli:main"``) and ``python -m emovox.cli``.
"""

from emovox.cli.app import app, main

__all__ = ["app", "main"]
