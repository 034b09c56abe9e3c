"""``arttag api``: serve the HTTP API with uvicorn; ``arttag api hash-key`` prints a key's digest."""

from __future__ import annotations

import argparse
import getpass
import logging

from arttag_cli.options import int_range

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="serve the HTTP API (FastAPI + uvicorn)")
    p.add_argument("--host", help="bind address (default: ARTTAG_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int_range("--port", 1, 65535), help="port, 1 to 65535 (default: ARTTAG_PORT or 8000)")
    p.add_argument("--workers", type=int_range("--workers", 1), default=1,
                   help="uvicorn worker processes; each loads the model and reads the latest view (default 1)")
    p.set_defaults(func=_serve)
    s = p.add_subparsers(dest="action")
    h = s.add_parser("hash-key", help="print sha256(key) for ARTTAG_API_KEY_HASHES (reads the key from stdin)")
    h.set_defaults(func=_hash_key)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from arttag.settings import ApiSettings

    settings = ApiSettings()
    host = args.host or settings.host
    port = args.port or settings.port
    overrides = {"host": host, "port": port}
    log.info("serving the arttag API on http://%s:%d (bundle %s)", host, port, settings.bundle_dir)
    if args.workers > 1:
        # workers re-import the factory: settings travel through the environment
        import os

        os.environ["ARTTAG_HOST"], os.environ["ARTTAG_PORT"] = host, str(port)
        uvicorn.run("arttag_api.app:create_app", factory=True, host=host, port=port,
                    workers=args.workers, log_level=settings.log_level.lower())
        return 0
    from arttag_api.app import create_app

    app = create_app(settings.model_copy(update=overrides))
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(),
                log_config=None)  # keep the logging the CLI configured
    return 0


def _hash_key(args: argparse.Namespace) -> int:
    from arttag_api.auth import hash_api_key

    key = getpass.getpass("API key: ") if _interactive() else input().strip()
    print(hash_api_key(key))
    return 0


def _interactive() -> bool:
    import sys

    return sys.stdin.isatty()
