"""Renders ``docs/review.png``: the review desk showing a real Tate artwork with the real model's
suggestions and explanations, as a signed-in curator sees it.

No broker is needed: the API is built (``create_app``) with a latest-suggestions view, a
catalogue and a curation database filled here: the artwork's record, the bundle's
suggestions for it, and a little feedback folded by the curation fold as ``arttag curate``
would (one curator decision, two public votes), so the card shows each kind of state. The
page is served by uvicorn on a free port and photographed in Debian's chromium.

The artwork is one of the dev split (the bundle did not learn from it) with its catalogue
tags taken off, as a new record arrives: ``--artwork-id`` picks another.

    .venv/bin/python bench/review_screenshot.py --bundle <full-Tate bundle> \\
        --catalogue <Tate artworks.jsonl.gz> [--artwork-id 1234] [--out docs/review.png]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CURATOR, KEY = "curator-1", "screenshot-only-key"


def pick_artwork(catalogue: Path, artwork_id: str | None):
    from arttag.catalogue.records import iter_catalogue
    from arttag.catalogue.split import split_of

    for record in iter_catalogue(catalogue):
        if artwork_id is not None:
            if record.artwork_id == artwork_id:
                return record
            continue
        m = record.metadata
        # a dev artwork a reader can follow: a real title, a medium, and tags to compare with
        if (split_of(record.artwork_id) == "dev" and len(m.title.split()) >= 4 and m.medium
                and len(m.tags) >= 4 and not m.title.lower().startswith(("untitled", "[title not known]"))):
            return record
    raise SystemExit(f"no artwork {artwork_id!r} in {catalogue}" if artwork_id else f"no dev artwork in {catalogue}")


def build_app(bundle: Path, record, database: str):
    from arttag.catalogue.text import content_hash
    from arttag.curation.fold import apply
    from arttag.curation.rules import CurationRules
    from arttag.curation.state import CurationState
    from arttag.curation.store import CurationStore
    from arttag.events import FeedbackActor, TagFeedbackGiven, TagSuggestionsPublished
    from arttag.kafka.artworks import CatalogueRecord, LatestArtworks
    from arttag.model.bundle import open_tagger
    from arttag.settings import ApiSettings, EncoderSettings
    from arttag_api.app import create_app
    from arttag_api.auth import hash_api_key
    from arttag_api.latest_view import LatestSuggestionsView
    from arttag_api.publisher import InMemoryFeedbackPublisher

    tagger = open_tagger(bundle, EncoderSettings())
    artwork = record.metadata.model_copy(update={"tags": []})  # a new record: nothing assigned yet
    [suggestions] = tagger.suggest([artwork])
    now = datetime.now(UTC)
    chash = content_hash(artwork)
    answer = suggestions[:6]
    event = TagSuggestionsPublished(
        suggestion_id=TagSuggestionsPublished.make_id(record.artwork_id, 1, chash, tagger.model_version, answer),
        artwork_id=record.artwork_id, revision=1, content_hash=chash, model_version=tagger.model_version,
        produced_at=now, suggestions=answer,
    )
    view = LatestSuggestionsView()
    view.apply(event)
    catalogue = LatestArtworks()
    catalogue.merge(record.artwork_id, CatalogueRecord(artwork_id=record.artwork_id, revision=1, produced_at=now,
                                                       artwork=artwork, event_id="screenshot"))

    # feedback as arttag curate folds it: a curator's word on the first tag, two votes on the second
    store = CurationStore.open(database)
    rules, state = CurationRules(), CurationState()
    first, second = suggestions[0], suggestions[1]
    words = [
        (FeedbackActor(kind="curator", id=CURATOR), first.tag_id, "accepted"),
        (FeedbackActor(kind="public", id="pub-3f2a9c81d04b7e65"), second.tag_id, "accepted"),
        (FeedbackActor(kind="public", id="pub-a81c44e0b9d2f317"), second.tag_id, "accepted"),
    ]
    for n, (actor, tag_id, action) in enumerate(words):
        feedback = TagFeedbackGiven(artwork_id=record.artwork_id, tag_id=tag_id, action=action, actor=actor,
                                    suggestion_id=event.suggestion_id, model_version=tagger.model_version,
                                    occurred_at=now - timedelta(minutes=10 - n))
        state, _ = apply(state, feedback, rules)
    store.write(state, artwork_ids=[record.artwork_id], contributor_ids=list(state.contributors), rules=rules)

    settings = ApiSettings(curators={CURATOR: hash_api_key(KEY)}, latest_view=False, catalogue_view=False,
                           curation_database_url=database, session_secret="x" * 40, bundle_reload_interval_s=0)
    return create_app(settings, tagger, view=view, catalogue=catalogue, store=store,
                      publisher=InMemoryFeedbackPublisher(), broker_check=lambda: True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, required=True, help="the model bundle (a full-Tate one)")
    parser.add_argument("--catalogue", type=Path, required=True, help="Tate artworks.jsonl(.gz)")
    parser.add_argument("--artwork-id", help="the artwork to show (default: the first fitting dev artwork)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "review.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    import socket

    import uvicorn
    from playwright.sync_api import sync_playwright

    record = pick_artwork(args.catalogue, args.artwork_id)
    with tempfile.TemporaryDirectory() as tmp:
        app = build_app(args.bundle, record, f"sqlite:///{Path(tmp) / 'curation.db'}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1400, "height": 1500})
                page.goto(f"{base}/review/sign-in")
                page.get_by_label("Curator key").fill(KEY)
                page.get_by_role("button", name="Sign in").click()
                page.goto(f"{base}/review/artworks/{record.artwork_id}")
                page.locator("#s1").focus()
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))  # the top of the page: the record and the first suggestions
                browser.close()
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    print(f"{args.out}: artwork {record.artwork_id} ({record.metadata.title})")


if __name__ == "__main__":
    main()
