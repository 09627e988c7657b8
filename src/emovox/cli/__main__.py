"""``python -m emovox.cli``: the same as the ``emovox`` console script."""

from emovox.cli.app import main

main()
