"""``python -m emovox``: the command line, as the ``emovox`` command (it was refused:
"'emovox' is a package and cannot be directly executed", QA stop 39)."""

from emovox.cli.app import main

if __name__ == "__main__":
    main()
