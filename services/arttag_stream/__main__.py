"""``python -m arttag_stream``: the stream worker, configured from ARTTAG_* variables."""

from __future__ import annotations

import sys

from arttag.settings import StreamSettings

from arttag_stream.runner import load_stream_tagger, run_worker


def main() -> int:
    settings = StreamSettings()
    return run_worker(settings, load_stream_tagger(settings))


if __name__ == "__main__":
    sys.exit(main())
