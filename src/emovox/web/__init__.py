"""The emovox web app: ``emovox app`` runs the Streamlit script :mod:`emovox.web.app`.

Owns the Streamlit page (:mod:`emovox.web.app`), what it shows as pure functions without
Streamlit (:mod:`emovox.web.view`: recording level, prediction status, timeline bands, error
wording; :mod:`emovox.web.adapted`: speaker adaptation's comparison table and wording;
:mod:`emovox.web.charts`: Altair charts; :mod:`emovox.web.figures`: matplotlib figures) and
the command that starts it. What the app shares with the REST API (settings, analysis of a
clip, error wording, the model card, adaptation to uploaded reference clips) lives in
:mod:`emovox.serving.service` and :mod:`emovox.serving.adapt_uploads`.

May import: serving, plots and the floors below (artifact, audio, features, affect, labels,
errors). Never imports api, cli, training or experiment (checked by import-linter).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emovox.serving.service import Settings

#: The Streamlit script that ``emovox app`` hands to ``streamlit run``.
APP_SCRIPT = Path(__file__).with_name("app.py")

__all__ = ["APP_SCRIPT", "LAUNCH", "streamlit_command"]


#: How the app's process starts streamlit: as ``python -m streamlit`` would, but with the
#: current folder off the import path first (``-m`` and ``-c`` put it first: a
#: ``streamlit.py``, ``pandas.py``... in the folder where ``emovox app`` was started ran
#: instead of the library; security QA, stop 31). ``PYTHONSAFEPATH`` does the same on
#: Python 3.11+ for anything the app starts in turn.
LAUNCH = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
          "sys.argv[0] = 'streamlit'; from streamlit.web.cli import main; sys.exit(main())")


def streamlit_command(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    headless: bool = True,
    python: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``(argv, environment additions)`` that run the app with ``streamlit run``.

    ``settings`` travel to the script as ``EMOVOX_*`` environment variables. Tracebacks are hidden
    (``client.showErrorDetails=none``), usage statistics are off, the upload limit of the
    browser widget matches ``settings.max_upload_mb``.
    """
    import math
    import sys

    max_mb = max(1, math.ceil(settings.max_upload_mb))
    argv = [
        python or sys.executable, "-c", LAUNCH, "run", str(APP_SCRIPT),
        "--server.address", host,
        "--server.port", str(int(port)),
        "--server.headless", "true" if headless else "false",
        "--server.maxUploadSize", str(max_mb),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none",
        "--client.toolbarMode", "viewer",
        "--global.developmentMode", "false",
    ]  # fmt: skip
    return argv, {**settings.to_env(), "PYTHONSAFEPATH": "1"}
