"""The emovox REST API (FastAPI): ``emovox serve``, or
``uvicorn --factory emovox.api.server:create_app_from_env``.

Import :func:`emovox.api.server.create_app` from the submodule; this package imports
nothing heavy so ``emovox --help`` stays fast.
"""
