"""The emovox REST API (FastAPI): ``emovox serve``, or
``uvicorn --factory emovox.api.server:create_app_from_env``.

Owns the HTTP layer only: routes and schemas (:mod:`emovox.api.server`,
:mod:`emovox.api.schemas`), the body limit and API-key middleware
(:mod:`emovox.api.middleware`) and the offline docs (:mod:`emovox.api.docs`). Everything
else (settings, errors -> HTTP status, uploads, timelines, the model card) comes from
:mod:`emovox.serving`.

May import: serving and the floors below it (artifact, audio, labels, errors). Never
imports web, cli, training or experiment (checked by import-linter). Import
:func:`emovox.api.server.create_app` from the submodule; this package imports nothing heavy
so ``emovox --help`` stays fast.
"""
