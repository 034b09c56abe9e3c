"""``python -m arttag_curate``: the processor under its settings, following feedback until SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from arttag.settings import CurateSettings

from arttag_curate.processor import CurateProcessor


def main() -> int:
    settings = CurateSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        CurateProcessor(settings).run(stop=stop)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
