"""``python -m arttag_curate``: the same as ``arttag curate``."""

from __future__ import annotations

import sys

from arttag_cli.main import main

if __name__ == "__main__":
    sys.exit(main(["curate", *sys.argv[1:]]))
