"""The review desk in a real browser against the real broker and the real ``arttag curate``.

Sample Tate artworks go out as artwork events; the worker's replay path tags them with a bundle
trained on the sample (hashing encoder) into the latest-suggestions topic; the API serves the
desk on a real port; the curate processor folds the feedback into decisions and the curation
database. A curator and a member of the public then use the page in Debian's chromium.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import pytest
from arttag.catalogue.records import iter_catalogue
from arttag.events import ArtworkCreated, TagDecisionsChanged, TagFeedbackGiven, decode_event, encode_event
from arttag.kafka import make_producer
from arttag.kafka.admin import create_topics
from arttag.kafka.clients import consumer, flush_or_fail, from_beginning, read_to_end
from arttag.kafka.topics import ARTWORKS_CREATED, TAG_DECISIONS, TAG_FEEDBACK, topic_name
from arttag.settings import ApiSettings, CurateSettings, KafkaSettings, StreamSettings
from arttag_api.app import create_app
from arttag_api.auth import hash_api_key

from .conftest import Requests, serious_violations, serve

pytestmark = [pytest.mark.kafka, pytest.mark.browser]

CURATOR, KEY = "jsmith", "curator-key-for-the-browser-test"
ARTWORKS = 6


def _wait(predicate, timeout_s: float = 60.0, every_s: float = 0.3):
    deadline = time.monotonic() + timeout_s  # a bound on waiting, not an assertion on speed
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every_s)
    return predicate()


def _read(kafka: KafkaSettings, name: str) -> list:
    reader = consumer(kafka)
    try:
        return [m for batch in read_to_end(reader, from_beginning(reader, topic_name(name, kafka.topic_prefix)),
                                           timeout_s=30) for m in batch]
    finally:
        reader.close()


def _decisions(kafka: KafkaSettings) -> dict[str, TagDecisionsChanged]:
    return {m.key().decode(): TagDecisionsChanged.model_validate_json(m.value()) for m in _read(kafka, TAG_DECISIONS)}


def _feedback(kafka: KafkaSettings) -> list[TagFeedbackGiven]:
    return [decode_event(m.value(), TagFeedbackGiven) for m in _read(kafka, TAG_FEEDBACK)]


@dataclass
class Desk:
    base: str
    kafka: KafkaSettings
    tagger: object


@pytest.fixture(scope="module")
def desk(kafka_bootstrap, hashing_bundle_dir, sample_catalogue, tmp_path_factory):
    from arttag.model.bundle import load_tagger
    from arttag_curate.processor import CurateProcessor
    from arttag_stream.replay import replay_artworks

    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"test-{uuid.uuid4().hex[:8]}.",
                          partitions=2)
    create_topics(kafka)
    producer = make_producer(kafka)
    for record in list(iter_catalogue(sample_catalogue))[:ARTWORKS]:
        # the bundle learnt from these records: keep one tag each, so the rest are news to review
        artwork = record.metadata.model_copy(update={"tags": record.metadata.tags[:1]})
        event = ArtworkCreated(artwork_id=record.artwork_id, revision=1, artwork=artwork)
        producer.produce(topic_name(ARTWORKS_CREATED, kafka.topic_prefix), key=record.artwork_id.encode(),
                         value=encode_event(event))
    flush_or_fail(producer)
    tagger = load_tagger(hashing_bundle_dir)
    # the worker's own path from artwork events to the latest-suggestions topic
    replay_artworks(StreamSettings(kafka=kafka, suggestion_limit=5), tagger, progress=False)

    database = f"sqlite:///{tmp_path_factory.mktemp('curation') / 'curation.db'}"
    stop = threading.Event()
    curate = CurateProcessor(CurateSettings(kafka=kafka, curation_database_url=database,
                                            curate_group=f"curate-{uuid.uuid4().hex[:8]}", poll_s=0.2))
    runner = threading.Thread(target=curate.run, kwargs={"stop": stop}, name="curate", daemon=True)
    runner.start()
    settings = ApiSettings(kafka=kafka, curators={CURATOR: hash_api_key(KEY)}, curation_database_url=database,
                           session_secret="s" * 40, review_undo_window_s=1.0, bundle_reload_interval_s=0,
                           rate_limit_anonymous_per_s=0)
    try:
        with serve(create_app(settings, tagger)) as base:
            import httpx

            ready = _wait(lambda: (r := httpx.get(f"{base}/readyz").json()).get("latest_view") == "caught_up"
                          and r.get("latest_view_artworks") == ARTWORKS)
            assert ready, httpx.get(f"{base}/readyz").text
            yield Desk(base, kafka, tagger)
    finally:
        stop.set()
        runner.join(timeout=30)


def _sign_in(browser, desk: Desk):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{desk.base}/review/sign-in")
    page.get_by_label("Curator key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as curator {CURATOR}").wait_for()
    return context, page


def _first_artwork(page) -> str:
    return page.locator(".queue-items a[aria-current=page]").get_attribute("href").split("/")[3].split("?")[0]


def test_a_curator_reviews_an_artwork_and_the_decisions_reach_the_broker(browser, desk, axe_source):
    context, page = _sign_in(browser, desk)
    requests = Requests(page, desk.base)
    page.goto(f"{desk.base}/review")
    artwork_id = _first_artwork(page)
    rows = page.locator("ol.suggestions > li.suggestion")
    assert rows.count() >= 3
    labels = [rows.nth(i).locator("h4").inner_text().split("\n")[0].split(" ")[0] for i in range(3)]
    # the explanation names similar artworks by title and marks matched words
    first = rows.nth(0)
    assert first.locator(".similar li").count() >= 1 and "% similar" in first.locator(".similar").inner_text()
    assert page.locator("ol.suggestions mark").count() >= 1
    assert serious_violations(page, axe_source) == []

    tag_ids = [rows.nth(i).locator("input[name=tag_id]").first.get_attribute("value") for i in range(3)]
    rows.nth(0).get_by_role("button", name="Accept").click()
    page.get_by_text("You accepted").wait_for()
    page.locator("ol.suggestions > li.suggestion").nth(1).get_by_role("button", name="Reject").click()
    page.get_by_text("You rejected").wait_for()

    # add a tag through the autocomplete: type, arrow down to the first option, Enter, Add
    vocabulary = desk.tagger.vocabulary
    wanted = next(t for t in vocabulary.tags if t.id not in tag_ids and len(t.label) > 4)
    page.get_by_label("Tag to add").fill(wanted.label[:4])
    option = page.locator("#add-tag-options [role=option]").first
    option.wait_for()
    page.get_by_label("Tag to add").press("ArrowDown")
    chosen_label = page.locator("[role=option][aria-selected=true]").get_attribute("data-label")
    chosen_id = page.locator("[role=option][aria-selected=true]").get_attribute("data-id")
    page.get_by_label("Tag to add").press("Enter")
    assert page.get_by_label("Tag to add").input_value() == chosen_label
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_text("You added").wait_for()
    assert page.get_by_role("button", name=f"Undo: added {chosen_label}").is_visible()
    page.get_by_role("button", name=f"Undo: added {chosen_label}").click()
    page.get_by_text("Undone: nothing was published.").wait_for()

    decided = _wait(lambda: (d := _decisions(desk.kafka).get(artwork_id)) is not None
                    and d.accepted and d.rejected and d)
    assert [(x.tag_id, x.decided_by, x.curator_id) for x in decided.accepted] == [(tag_ids[0], "curator", CURATOR)]
    assert [x.tag_id for x in decided.rejected] == [tag_ids[1]]
    mine = [f for f in _feedback(desk.kafka) if f.artwork_id == artwork_id and f.actor.id == CURATOR]
    assert sorted((f.tag_id, f.action) for f in mine) == sorted([(tag_ids[0], "accepted"), (tag_ids[1], "rejected")])
    assert chosen_id not in {f.tag_id for f in mine}  # the undone add was never published

    # the page shows the decisions once the curation database has them
    def shown():
        page.goto(f"{desk.base}/review/artworks/{artwork_id}")
        return f"Accepted by curator {CURATOR}" in page.locator("ol.suggestions").inner_text()
    assert _wait(shown, every_s=0.5)
    assert labels[0] and requests.external == []
    context.close()


def test_a_public_vote_appears_on_the_curators_view(browser, desk, axe_source):
    public = browser.new_context()
    page = public.new_page()
    page.goto(f"{desk.base}/review")
    artwork_id = _first_artwork(page)
    assert page.get_by_role("button", name="Accept").count() == 0  # the public votes, it does not decide
    row = page.locator("ol.suggestions > li.suggestion").last
    tag_id = row.locator("input[name=tag_id]").first.get_attribute("value")
    row.get_by_role("button", name="Vote yes").click()
    page.get_by_text("You voted yes on").wait_for()
    contributor = page.locator(".who strong").inner_text()
    assert contributor.startswith("pub-")
    assert serious_violations(page, axe_source) == []
    public.close()

    context, curator = _sign_in(browser, desk)

    def vote_shown():
        curator.goto(f"{desk.base}/review/artworks/{artwork_id}")
        row = curator.locator(f"li.suggestion:has(input[name=tag_id][value='{tag_id}'])").first
        return "1 for, 0 against" in row.inner_text() and f"{contributor}: yes" in row.inner_text()
    assert _wait(vote_shown, every_s=0.5)
    # the curator overrules: their word decides whatever the votes say
    row = curator.locator(f"li.suggestion:has(input[name=tag_id][value='{tag_id}'])").first
    row.get_by_role("button", name="Reject").click()
    curator.get_by_text("You rejected").wait_for()
    context.close()
    decided = _wait(lambda: any(d.tag_id == tag_id and d.curator_id == CURATOR
                                for d in getattr(_decisions(desk.kafka).get(artwork_id), "rejected", [])))
    assert decided


def test_a_form_post_without_the_csrf_token_is_refused(browser, desk):
    context, page = _sign_in(browser, desk)
    page.goto(f"{desk.base}/review")
    artwork_id = _first_artwork(page)
    before = len(_feedback(desk.kafka))
    form = page.locator("ol.suggestions > li.suggestion").last.locator("form").first
    form.locator("input[name=csrf_token]").evaluate("e => e.remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.get_by_role("button").click()
    assert answer.value.status == 403
    page.get_by_text("This form has expired").wait_for()
    # a fetch from the page without the header is refused too, and a forged token as well
    status = page.evaluate("""async (url) => {
        const plain = await fetch(url, {method: 'POST', body: new URLSearchParams({action: 'accepted', tag_id: 'x'})});
        const forged = await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': 'forged'},
                                         body: new URLSearchParams({action: 'accepted', tag_id: 'x'})});
        return [plain.status, forged.status]; }""", f"/review/artworks/{artwork_id}/feedback")
    assert status == [403, 403]
    time.sleep(1.5)  # longer than the undo window: anything taken would be out by now
    assert len(_feedback(desk.kafka)) == before
    context.close()


def test_the_keyboard_alone_reaches_every_control_and_runs_the_flow(browser, desk, axe_source):
    context, page = _sign_in(browser, desk)
    page.goto(f"{desk.base}/review")
    decided = _decisions(desk.kafka)
    links = page.locator(".queue-items a")
    untouched = [links.nth(i) for i in range(links.count())
                 if links.nth(i).get_attribute("href").split("/")[3].split("?")[0] not in decided]
    untouched[0].click()  # an artwork nobody has given feedback on yet
    artwork_id = _first_artwork(page)

    # Tab from the top visits every link, button and field on the page
    controls = page.evaluate("""() => Array.from(document.querySelectorAll(
        'a[href], button, input:not([type=hidden]), select, summary')).filter(e => e.offsetParent !== null)
        .map(e => e.outerHTML)""")
    page.locator("body").focus()
    reached = set()
    for _ in range(len(controls) + 10):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("() => document.activeElement.outerHTML"))
    assert [c for c in controls if c not in reached] == []
    # every control has an accessible name (axe checks labels; this states it for buttons)
    assert page.evaluate("""() => Array.from(document.querySelectorAll('button'))
        .filter(b => !b.innerText.trim() && !b.getAttribute('aria-label')).length""") == 0

    # the shortcuts: j to a suggestion, a accepts it, the focus moves on, r rejects, u undoes, n moves on
    page.keyboard.press("j")
    assert page.evaluate("() => document.activeElement.id") == "s1"
    first_tag = page.locator("#s1 input[name=tag_id]").first.get_attribute("value")
    page.keyboard.press("a")
    page.get_by_text("You accepted").wait_for()
    assert page.evaluate("() => document.activeElement.id") == "s2"
    page.keyboard.press("r")
    page.get_by_text("You rejected").wait_for()
    page.keyboard.press("u")
    page.get_by_text("Undone: nothing was published.").wait_for()
    page.keyboard.press("n")
    page.wait_for_url(lambda url: f"/review/artworks/{artwork_id}" not in url)
    assert serious_violations(page, axe_source) == []
    context.close()
    decided = _wait(lambda: _decisions(desk.kafka).get(artwork_id))
    assert [d.tag_id for d in decided.accepted] == [first_tag] and decided.rejected == []


def test_sign_in_and_error_pages_pass_the_accessibility_check(browser, desk, axe_source):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{desk.base}/review/sign-in")
    assert serious_violations(page, axe_source) == []
    page.get_by_label("Curator key").fill("not a key")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("That curator key is not accepted").first.wait_for()
    assert serious_violations(page, axe_source) == []
    context.close()
