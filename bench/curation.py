"""Curation benchmark: the stream a museum sees, a simulated curator and crowd, the real feedback path.

1. **Bundle.** A bundle trained on the Tate artworks acquired before ``--before`` (2000) with
   ``arttag train`` (the exported MPNet, the embedding cache); ``--bundle`` reuses one.
2. **Stream.** The tagged artworks acquired from that year on, in accession-number order (the
   first ``--stream-artworks``), are published as ``ArtworkCreated`` events *without their
   tags* to this benchmark's own broker (``deploy/kafka/kafka.sh``, never the shared one) and
   tagged by the real worker (``python -m arttag_stream``). Two runs on fresh topics:

   - **online**: one artwork at a time. Its suggestions arrive; a simulated curator accepts
     the correct suggested tags, rejects the wrong ones in the top 5 and adds the missing
     true tags, as ``TagFeedbackGiven`` events on ``tags.feedback.v1``; the real processor
     (``python -m arttag_curate``) folds them into ``tags.decisions.v1``; the next artwork is
     sent only once this artwork's decisions are on the decisions topic *and* the worker has
     learned them (its online-learning gauge counts the artwork), so every suggestion is made
     by a model that knows every earlier decision, as a curator working down a list would see;
   - **static**: the same bundle with online learning off; the artworks are published at once
     (nothing learns, so the order of feedback cannot matter) and tagged one per batch, like
     the online run.

   F1@5 and nDCG@10 of each run's suggestions against the artwork's true tags (all of them,
   also tags the bundle's vocabulary lacks), overall and on artworks whose text appears
   nowhere in the artworks the bundle was fitted on.
3. **Crowd** (in-process, on the event objects, through :func:`arttag.curation.fold.apply`):
   each of the static run's suggestions gets five honest public voters (right 80% of the
   time on each of its top 5 tags) plus adversarial voters who accept everything, so many
   that they cast the given share of votes (0, 10, 20, 30%); curators review a share of the
   artworks afterwards (so their verdicts move the contributors' weights). Precision and
   recall of the tags the consensus accepted, on the artworks no curator reviewed.
4. **Feedback throughput**: the 20% crowd's events (votes and curator words, about 50,000)
   produced at once to the feedback topic while the real processor follows it; events per
   second from the first produced to the last decision record on the topic, and events
   lost: those on artworks whose last decisions record differs from the in-process fold of
   every produced event.

    .venv/bin/python bench/curation.py --tate ../shared/data/tate/artworks.jsonl.gz \\
        [--bundle DIR] [--stream-artworks 2000]

Writes ``bench/results/curation.json`` (machine, bundle, tables, ``headline``) and prints a table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine_info beside it

from arttag.catalogue.records import iter_catalogue
from arttag.catalogue.split import split_of
from arttag.catalogue.text import build_text
from arttag.curation.fold import apply, decisions_of
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState
from arttag.events import (
    ArtworkMetadata,
    FeedbackActor,
    TagDecisionsChanged,
    TagFeedbackGiven,
)
from arttag.quality.ranking import ranking_metrics
from harness import Broker, TopicReader, kafka_env, start_process, wait_for_line
from machine_info import machine_details, portable_path

REPO = Path(__file__).resolve().parents[1]
TATE = REPO.parent / "shared" / "data" / "tate" / "artworks.jsonl.gz"
OUT = REPO / "bench" / "results" / "curation.json"

# The worker's switch for online learning (StreamSettings), and the line its learner logs once
# it holds an artwork's accepted tags (arttag.curation.learning): the tagger learns what the
# learner holds at the start of its next batch, so the online run sends the next artwork only
# after this line is in the worker's log.
ONLINE_SETTING = "ARTTAG_ONLINE_LEARNING"
LEARNED_LINE = "online learning: artwork {artwork_id} learned"

HEADLINE_KEYS = (
    "static_f1_at_5", "online_f1_at_5", "online_gain_f1_at_5", "novel_text_online_gain_f1_at_5",
    "consensus_precision_at_20pct_adversarial", "consensus_recall_at_20pct_adversarial",
    "feedback_events_per_s", "lost_feedback",
)
TARGETS = {
    "online_gain_f1_at_5": ">= 0.03",
    "consensus_precision_at_20pct_adversarial": ">= 0.95",
    "lost_feedback": "== 0",
}
ADVERSARIAL_SHARES = (0.0, 0.1, 0.2, 0.3)

log = logging.getLogger("bench.curation")


# -- the artworks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamArtwork:
    """An artwork of the stream: its metadata as published (no tags) and the tags it truly has."""

    artwork_id: str
    metadata: ArtworkMetadata
    truth: dict[str, str]  # tag id -> label
    novel_text: bool


def acquired_before(row: dict[str, Any], year: int) -> bool:
    y = row.get("acquisition_year")
    return isinstance(y, int) and y < year


def write_training_file(tate: Path, out: Path, year: int) -> int:
    """The Tate rows acquired before ``year``, unchanged, as gzipped JSON lines; returns the count."""
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with gzip.open(tate, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for line in src:
            if line.strip() and acquired_before(json.loads(line), year):
                dst.write(line if line.endswith("\n") else line + "\n")
                n += 1
    return n


def accession_key(artwork: StreamArtwork) -> tuple[str, str]:
    return (artwork.metadata.accession_number or "", artwork.artwork_id)


def load_stream(tate: Path, year: int, limit: int | None) -> tuple[list[StreamArtwork], dict[str, int]]:
    """The tagged artworks acquired from ``year`` on, by accession number (the first ``limit``),
    and counts. Novel text: the model input text of no artwork the bundle was fitted on (the
    train and rerank splits of the artworks acquired before ``year``)."""
    fitted_texts: set[str] = set()
    stream: list[StreamArtwork] = []
    counts = {"training_rows": 0, "acquired_later": 0, "acquired_later_tagged": 0, "no_acquisition_year": 0}
    later = []
    for record in iter_catalogue(tate):
        y = record.metadata.acquisition_year
        if y is None:
            counts["no_acquisition_year"] += 1
        elif y < year:
            counts["training_rows"] += 1
            if split_of(record.artwork_id) != "dev":
                fitted_texts.add(build_text(record.metadata))
        else:
            counts["acquired_later"] += 1
            if record.metadata.tags:
                later.append(record)
    counts["acquired_later_tagged"] = len(later)
    for record in later:
        meta = record.metadata
        truth = {t.id: t.label or t.id for t in meta.tags}
        # a newly acquired artwork carries no tags yet: finding them is the tagger's job
        published = meta.model_copy(update={"tags": []})
        stream.append(StreamArtwork(record.artwork_id, published, truth, build_text(published) not in fitted_texts))
    stream.sort(key=accession_key)
    return stream[:limit] if limit else stream, counts


# -- the curator ----------------------------------------------------------------------------------


def curator_feedback(artwork: StreamArtwork, suggestion: dict[str, Any], *, curator_id: str = "curator-1",
                     top_k: int = 5) -> list[TagFeedbackGiven]:
    """What a curator answers to one suggestions event: accept each correct suggested tag, reject
    each wrong one in the top ``top_k``, add each true tag that was not suggested."""
    events: list[TagFeedbackGiven] = []
    actor = FeedbackActor(kind="curator", id=curator_id)
    common = {"artwork_id": artwork.artwork_id, "actor": actor,
              "suggestion_id": suggestion.get("suggestion_id"), "model_version": suggestion.get("model_version")}
    suggested = set()
    for rank, s in enumerate(suggestion.get("suggestions", [])):
        tag_id = s["tag_id"]
        suggested.add(tag_id)
        if tag_id in artwork.truth:
            events.append(TagFeedbackGiven(tag_id=tag_id, tag_label=s.get("label"), action="accepted", **common))
        elif rank < top_k:
            events.append(TagFeedbackGiven(tag_id=tag_id, tag_label=s.get("label"), action="rejected", **common))
    for tag_id in sorted(set(artwork.truth) - suggested):
        events.append(TagFeedbackGiven(tag_id=tag_id, tag_label=artwork.truth[tag_id], action="added", **common))
    return events


def expected_verdict(events: Iterable[TagFeedbackGiven]) -> tuple[frozenset[str], frozenset[str]]:
    """(accepted, rejected) tag ids that the curator's events decide."""
    accepted = {e.tag_id for e in events if e.action in ("accepted", "added")}
    rejected = {e.tag_id for e in events if e.action == "rejected"}
    return frozenset(accepted), frozenset(rejected - accepted)


# -- the stream, one artwork at a time -----------------------------------------------------------


class StreamIO(Protocol):
    """Where the stream loop sends artworks and feedback and reads suggestions and decisions
    (:class:`KafkaStreamIO` on a broker; the tests use an in-process one)."""

    def send_artwork(self, artwork: StreamArtwork) -> None: ...

    def await_suggestion(self, artwork_id: str) -> dict[str, Any]: ...

    def send_feedback(self, events: Sequence[TagFeedbackGiven]) -> None: ...

    def await_decisions(self, artwork_id: str, accepted: frozenset[str], rejected: frozenset[str]) -> None: ...

    def await_learned(self, artwork_id: str) -> None: ...


@dataclass
class StepRecord:
    artwork_id: str
    ranking: list[str]
    model_version: str
    feedback_events: int = 0
    suggestion_s: float = 0.0
    decisions_s: float = 0.0
    learned_s: float = 0.0


def run_curated_stream(artworks: Sequence[StreamArtwork], io: StreamIO, *, curator_id: str = "curator-1",
                       progress_every: int = 100) -> list[StepRecord]:
    """Artwork i is sent, suggested, answered by the curator, decided and learned before
    artwork i+1 is sent."""
    steps: list[StepRecord] = []
    started = time.monotonic()
    for i, artwork in enumerate(artworks):
        t0 = time.monotonic()
        io.send_artwork(artwork)
        suggestion = io.await_suggestion(artwork.artwork_id)
        t1 = time.monotonic()
        events = curator_feedback(artwork, suggestion, curator_id=curator_id)
        io.send_feedback(events)
        accepted, rejected = expected_verdict(events)
        io.await_decisions(artwork.artwork_id, accepted, rejected)
        t2 = time.monotonic()
        io.await_learned(artwork.artwork_id)
        t3 = time.monotonic()
        steps.append(StepRecord(artwork.artwork_id, [s["tag_id"] for s in suggestion["suggestions"]],
                                suggestion["model_version"], len(events), t1 - t0, t2 - t1, t3 - t2))
        if progress_every and (i + 1) % progress_every == 0:
            log.info("online stream: %d/%d artworks, %.2f s each", i + 1, len(artworks),
                     (time.monotonic() - started) / (i + 1))
    return steps


def run_backlog(artworks: Sequence[StreamArtwork], io: StreamIO) -> list[StepRecord]:
    """Every artwork sent at once, then every suggestion read (a model that does not learn)."""
    for artwork in artworks:
        io.send_artwork(artwork)
    out = []
    for artwork in artworks:
        suggestion = io.await_suggestion(artwork.artwork_id)
        out.append(StepRecord(artwork.artwork_id, [s["tag_id"] for s in suggestion["suggestions"]],
                              suggestion["model_version"]))
    return out


# -- quality ------------------------------------------------------------------------------------


def stream_quality(artworks: Sequence[StreamArtwork], steps: Sequence[StepRecord]) -> dict[str, Any]:
    """F1@5, nDCG@10 (:func:`arttag.quality.ranking.ranking_metrics`) over all artworks and over
    those with novel text, gold = all their true tags."""
    by_id = {s.artwork_id: s for s in steps}
    index: dict[str, int] = {}

    def ids(tags: Iterable[str]) -> list[int]:
        return [index.setdefault(t, len(index)) for t in tags]

    rows = [(ids(by_id[a.artwork_id].ranking), set(ids(a.truth)), a.novel_text) for a in artworks]

    def metrics(selected: list[tuple[list[int], set[int], bool]]) -> dict[str, float]:
        m = ranking_metrics([r[0] for r in selected], [r[1] for r in selected])
        return {k: (v if k == "documents" else round(float(v), 4)) for k, v in m.items()}

    return {"all": metrics(rows), "novel_text": metrics([r for r in rows if r[2]])}


def gain(online: dict[str, Any], static: dict[str, Any], subset: str, key: str) -> float:
    return round(online[subset][key] - static[subset][key], 4)


# -- the crowd ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CrowdParams:
    """The simulated public. ``adversarial_share``: the share of all votes cast by contributors
    who accept everything (they come on top of the honest voters)."""

    adversarial_share: float = 0.2
    honest_per_suggestion: int = 5
    honest_accuracy: float = 0.8
    honest_pool: int = 300
    top_k: int = 5
    curator_share: float = 0.2
    curator_delay: int = 50  # a curator reviews an artwork after this many later artworks were voted on
    artwork_gap_s: float = 60.0
    vote_gap_s: tuple[float, float] = (3.0, 12.0)  # human pace: no vote is implausibly fast
    seed: int = 14


@dataclass(frozen=True)
class VotedSuggestion:
    artwork_id: str
    top: tuple[str, ...]
    truth: frozenset[str]
    suggestion_id: str | None = None
    model_version: str | None = None


@dataclass
class CrowdRun:
    events: list[TagFeedbackGiven]
    reviewed: set[str]
    adversaries: int
    honest: int


def crowd_feedback(suggestions: Sequence[VotedSuggestion], params: CrowdParams) -> CrowdRun:
    """Public votes and curator reviews over ``suggestions``, ordered by ``occurred_at``.

    Each suggestion: ``honest_per_suggestion`` distinct honest contributors, each voting on
    every tag of the top ``top_k`` and right with probability ``honest_accuracy``; adversarial
    contributors accepting each of those tags, on average ``h * s / (1 - s)`` of them per
    suggestion so that their votes are the share ``s`` of all; both from fixed pools (so
    weights can learn who is who), the adversarial pool sized to give its members as many
    votes each as an honest one. A random ``curator_share`` of the artworks is reviewed by a
    curator ``curator_delay`` artworks later (accept the true tags, reject the wrong ones of
    the top ``top_k``). Ids and times are deterministic for a seed."""
    # one generator per concern, so every share sees the same honest votes and curator reviews
    # and differs only by the adversaries added
    honest_rng, adv_rng, review_rng = (random.Random(f"{params.seed}:{what}") for what in ("honest", "adv", "review"))
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:arttag:bench-curation:{params.seed}:{params.adversarial_share}")
    s = params.adversarial_share
    per = params.honest_per_suggestion * s / (1 - s) if s < 1 else 0.0
    adv_pool = max(1, round(params.honest_pool * s / (1 - s))) if s > 0 else 0
    base = datetime(2030, 1, 1, tzinfo=UTC)
    last_vote: dict[str, datetime] = {}
    events: list[TagFeedbackGiven] = []
    reviewed: set[str] = set()
    counter = 0

    def event(**fields: Any) -> TagFeedbackGiven:
        nonlocal counter
        counter += 1
        return TagFeedbackGiven(event_id=str(uuid.uuid5(ns, str(counter))), **fields)

    def votes(contributor: str, sug: VotedSuggestion, start: datetime, rng: random.Random, honest: bool) -> None:
        t = max(start + timedelta(seconds=rng.uniform(0, params.artwork_gap_s)),
                last_vote.get(contributor, base) + timedelta(seconds=params.vote_gap_s[1]))
        for tag_id in sug.top[:params.top_k]:
            right = tag_id in sug.truth
            accept = (right if rng.random() < params.honest_accuracy else not right) if honest else True
            t += timedelta(seconds=rng.uniform(*params.vote_gap_s))
            events.append(event(occurred_at=t, artwork_id=sug.artwork_id, tag_id=tag_id,
                                action="accepted" if accept else "rejected",
                                actor=FeedbackActor(kind="public", id=contributor),
                                suggestion_id=sug.suggestion_id, model_version=sug.model_version))
        last_vote[contributor] = t

    for i, sug in enumerate(suggestions):
        start = base + timedelta(seconds=i * params.artwork_gap_s)
        for h in honest_rng.sample(range(params.honest_pool), params.honest_per_suggestion):
            votes(f"public-h{h:04d}", sug, start, honest_rng, True)
        n_adv = int(per) + (adv_rng.random() < per - int(per))
        if n_adv and adv_pool:
            for a in adv_rng.sample(range(adv_pool), min(n_adv, adv_pool)):
                votes(f"public-a{a:04d}", sug, start, adv_rng, False)
        if review_rng.random() < params.curator_share:
            reviewed.add(sug.artwork_id)
            t = base + timedelta(seconds=(i + params.curator_delay) * params.artwork_gap_s)
            for tag_id in sug.top[:params.top_k]:
                t += timedelta(seconds=5)
                events.append(event(occurred_at=t, artwork_id=sug.artwork_id, tag_id=tag_id,
                                    action="accepted" if tag_id in sug.truth else "rejected",
                                    actor=FeedbackActor(kind="curator", id="curator-1"),
                                    suggestion_id=sug.suggestion_id, model_version=sug.model_version))
    events.sort(key=lambda e: (e.occurred_at, e.event_id))
    return CrowdRun(events, reviewed, adv_pool, params.honest_pool)


def fold_all(events: Iterable[TagFeedbackGiven], rules: CurationRules) -> CurationState:
    """The curation state after every event, through the real fold."""
    state = CurationState()
    for e in events:
        apply(state, e, rules)
    return state


def consensus_quality(state: CurationState, suggestions: Sequence[VotedSuggestion], reviewed: set[str],
                      rules: CurationRules, top_k: int = 5) -> dict[str, Any]:
    """Tags the public consensus accepted, on artworks no curator reviewed, against the true tags:
    precision; recall of the true tags that were put to the vote (the top ``top_k``); recall of
    all true tags."""
    accepted = right = true_voted = true_all = rejected = proposed = 0
    for sug in suggestions:
        if sug.artwork_id in reviewed or sug.artwork_id not in state.artworks:
            continue
        record = decisions_of(state, sug.artwork_id, rules)
        by_crowd = {d.tag_id for d in record.accepted if d.decided_by == "consensus"}
        accepted += len(by_crowd)
        right += len(by_crowd & sug.truth)
        true_voted += len(set(sug.top[:top_k]) & sug.truth)
        true_all += len(sug.truth)
        rejected += sum(d.decided_by == "consensus" for d in record.rejected)
        proposed += len(record.proposed)
    weights = state.weights
    honest = [w for c, w in weights.items() if c.startswith("public-h")]
    adversarial = [w for c, w in weights.items() if c.startswith("public-a")]
    return {
        "precision": round(right / accepted, 4) if accepted else None,
        "recall_of_voted_true_tags": round(right / true_voted, 4) if true_voted else None,
        "recall_of_all_true_tags": round(right / true_all, 4) if true_all else None,
        "consensus_accepted": accepted, "consensus_rejected": rejected, "undecided": proposed,
        "median_weight_honest": round(statistics.median(honest), 3) if honest else None,
        "median_weight_adversarial": round(statistics.median(adversarial), 3) if adversarial else None,
    }


def crowd_table(suggestions: Sequence[VotedSuggestion], rules: CurationRules,
                shares: Sequence[float] = ADVERSARIAL_SHARES, **params: Any) -> tuple[list[dict[str, Any]], dict[float, CrowdRun]]:
    rows, runs = [], {}
    for share in shares:
        p = CrowdParams(adversarial_share=share, **params)
        run = crowd_feedback(suggestions, p)
        t0 = time.perf_counter()
        state = fold_all(run.events, rules)
        fold_s = time.perf_counter() - t0
        row = {"adversarial_share": share, "events": len(run.events),
               "public_votes": sum(e.actor.kind == "public" for e in run.events),
               "adversarial_votes": sum(e.actor.id.startswith("public-a") for e in run.events),
               "curator_words": sum(e.actor.kind == "curator" for e in run.events),
               "reviewed_artworks": len(run.reviewed), "honest_contributors": run.honest,
               "adversarial_contributors": run.adversaries,
               **consensus_quality(state, suggestions, run.reviewed, rules, p.top_k),
               "in_process_fold_events_per_s": round(len(run.events) / fold_s, 1) if fold_s else None}
        if share > 0:
            # the same votes with every weight 1 (no curator verdicts, no accept-everything rule):
            # what the trust rules add
            flat = replace(rules, trust_prior_votes=1e12, accept_all_factor=1.0)
            untrusted = consensus_quality(fold_all(run.events, flat), suggestions, run.reviewed, flat, p.top_k)
            row["without_trust"] = {k: untrusted[k] for k in ("precision", "recall_of_voted_true_tags",
                                                              "consensus_accepted")}
        log.info("crowd at %.0f%% adversarial: precision %s, recall (voted) %s", share * 100,
                 row["precision"], row["recall_of_voted_true_tags"])
        rows.append(row)
        runs[share] = run
    return rows, runs


# -- lost feedback ------------------------------------------------------------------------------


def lost_feedback(events: Sequence[TagFeedbackGiven], published: dict[str, str],
                  expected: dict[str, TagDecisionsChanged]) -> dict[str, int]:
    """Feedback events whose effect is missing: every event on an artwork whose last record on
    the decisions topic (``published``: artwork id -> decisions id) differs from the in-process
    fold of all produced events (``expected``), and every tag with feedback that the expected
    record does not name."""
    wrong = {a for a, record in expected.items() if published.get(a) != record.decisions_id}
    named = {a: {d.tag_id for d in r.accepted} | {d.tag_id for d in r.rejected} | set(r.proposed)
             for a, r in expected.items()}
    lost = sum(e.artwork_id in wrong or e.tag_id not in named.get(e.artwork_id, ()) for e in events)
    return {"lost": lost, "artworks_wrong": len(wrong), "artworks": len(expected)}


# -- Kafka: the broker, the processes, the IO -------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float = 60) -> int | None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def start_worker(kafka, bundle: Path, online: bool, log_path: Path, metrics_port: int, data_dir: Path,
                 extra: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**kafka_env(kafka), "ARTTAG_BUNDLE_DIR": str(bundle), "ARTTAG_ENCODER_KIND": "onnx",
           "ARTTAG_CONSUMER_GROUP": f"bench-curation-{uuid.uuid4().hex[:6]}", "ARTTAG_METRICS_PORT": str(metrics_port),
           # one artwork per batch in both runs: the same batch shapes for the encoder
           "ARTTAG_BATCH_MAX_EVENTS": "1", "ARTTAG_BATCH_MAX_MS": "5", "ARTTAG_BATCH_IDLE_MS": "1",
           "ARTTAG_BUNDLE_RELOAD_INTERVAL_S": "0", "ARTTAG_DATA_DIR": str(data_dir),
           ONLINE_SETTING: "true" if online else "false", **(extra or {})}
    return start_process("arttag_stream", env, log_path)


def database_url(path: Path) -> str:
    return f"sqlite:///{path}"


def start_curate(kafka, log_path: Path, database: Path) -> subprocess.Popen:
    """``arttag curate`` following the feedback, writing its curation database to ``database``."""
    return start_process("arttag_curate", {**kafka_env(kafka), "ARTTAG_POLL_S": "0.05",
                                           "ARTTAG_CURATE_GROUP": f"bench-curate-{uuid.uuid4().hex[:6]}",
                                           "ARTTAG_CURATION_DATABASE_URL": database_url(database)}, log_path)


def rebuild_matches(kafka, live: Path, rebuilt: Path) -> bool:
    """``arttag curate rebuild`` into a new database gives exactly the rows the live processor wrote."""
    from arttag.curation.store import CurationStore

    subprocess.run([sys.executable, "-m", "arttag_cli", "curate", "rebuild", "--database-url", database_url(rebuilt)],
                   env={**os.environ, **kafka_env(kafka)}, check=True, capture_output=True)
    stores = [CurationStore.open(database_url(p), create=False) for p in (live, rebuilt)]
    try:
        return stores[0].dump() == stores[1].dump()
    finally:
        for store in stores:
            store.close()


class TopicWatcher(TopicReader):
    """Reads the suggestions and decisions topics from the beginning: the newest suggestion and
    the newest decisions record per artwork."""

    poll_s = 0.02

    def __init__(self, kafka, suggestions: str, decisions: str) -> None:
        super().__init__(kafka, [suggestions, decisions])
        self.suggestions_topic = suggestions
        self.suggestions: dict[str, dict[str, Any]] = {}
        self.decisions: dict[str, dict[str, Any]] = {}
        self.decision_records = 0
        self.received = 0
        self.cond = threading.Condition()

    def handle(self, msg, now: float) -> None:
        if msg.value() is None:
            return
        data = json.loads(msg.value())
        with self.cond:
            self.received += 1
            if msg.topic() == self.suggestions_topic:
                self.suggestions[data["artwork_id"]] = data
            else:
                self.decisions[data["artwork_id"]] = data
                self.decision_records += 1
            self.cond.notify_all()

    def wait(self, ready: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """``ready()``'s value once it is true; fails after ``timeout_s`` without a new record
        (a backlog may take long, but it moves)."""
        with self.cond:
            seen, deadline = self.received, time.monotonic() + timeout_s
            while not (value := ready()):
                if self.received != seen:
                    seen, deadline = self.received, time.monotonic() + timeout_s
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timed out waiting for {what}: nothing new for {timeout_s:.0f} s")
                self.cond.wait(min(left, 0.5))
            return value


class KafkaStreamIO:
    """The stream loop's IO on a broker: created events and feedback produced with the project's
    producer; suggestions and decisions read by a :class:`TopicWatcher`; learning read from
    the worker's log (``worker_log``; None: do not wait for learning)."""

    def __init__(self, kafka, watcher: TopicWatcher, worker_log: Path | None, timeout_s: float = 120) -> None:
        from arttag.kafka import make_producer
        from arttag.kafka.topics import TAG_FEEDBACK, StreamTopics, topic_name

        self.topics = StreamTopics.for_prefix(kafka.topic_prefix)
        self.feedback_topic = topic_name(TAG_FEEDBACK, kafka.topic_prefix)
        self.producer = make_producer(kafka, **{"linger.ms": 0})
        self.watcher, self.timeout_s = watcher, timeout_s
        self.worker_log = open(worker_log, encoding="utf-8", errors="replace") if worker_log else None  # noqa: SIM115
        self._log_tail = ""
        self.feedback_produced: list[TagFeedbackGiven] = []

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        from arttag.kafka.clients import flush_or_fail

        self.producer.produce(topic, key=key.encode("utf-8"), value=value)
        flush_or_fail(self.producer)

    def send_artwork(self, artwork: StreamArtwork) -> None:
        from arttag.events import ArtworkCreated, encode_event

        event = ArtworkCreated(artwork_id=artwork.artwork_id, revision=1, artwork=artwork.metadata,
                               source="arttag-bench-curation")
        self.producer.produce(self.topics.created, key=artwork.artwork_id.encode(), value=encode_event(event))
        self.producer.poll(0)

    def await_suggestion(self, artwork_id: str) -> dict[str, Any]:
        from arttag.kafka.clients import flush_or_fail

        flush_or_fail(self.producer)
        return self.watcher.wait(lambda: self.watcher.suggestions.get(artwork_id), self.timeout_s,
                                 f"the suggestions of {artwork_id}")

    def send_feedback(self, events: Sequence[TagFeedbackGiven]) -> None:
        from arttag.events import encode_event
        from arttag.kafka.clients import flush_or_fail

        for e in events:
            self.producer.produce(self.feedback_topic, key=e.artwork_id.encode(), value=encode_event(e))
        flush_or_fail(self.producer)
        self.feedback_produced += events

    def await_decisions(self, artwork_id: str, accepted: frozenset[str], rejected: frozenset[str]) -> None:
        def ready() -> bool:
            d = self.watcher.decisions.get(artwork_id)
            return d is not None and ({t["tag_id"] for t in d["accepted"]} == accepted
                                      and {t["tag_id"] for t in d["rejected"]} == rejected)

        self.watcher.wait(ready, self.timeout_s, f"the decisions of {artwork_id}")

    def await_learned(self, artwork_id: str) -> None:
        if self.worker_log is None:
            return
        needle = LEARNED_LINE.format(artwork_id=artwork_id) + " "
        deadline = time.monotonic() + self.timeout_s
        while True:
            # the log is read on from where the last wait stopped; a line may arrive in pieces
            self._log_tail += self.worker_log.read()
            at = self._log_tail.find(needle)
            if at >= 0:
                self._log_tail = self._log_tail[at + len(needle):]
                return
            self._log_tail = self._log_tail[-4096:]
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not log learning {artwork_id} in time")
            time.sleep(0.005)


def stream_run(kafka, bundle: Path, artworks: Sequence[StreamArtwork], online: bool, logs: Path) -> dict[str, Any]:
    """One run on fresh topics: the worker (online learning on or off), the curate processor,
    and (online) the curator loop or (static) the backlog."""
    from arttag.kafka.admin import create_topics
    from arttag.kafka.topics import TAG_DECISIONS, StreamTopics, topic_name

    label = "online" if online else "static"
    kafka = kafka.model_copy(update={"topic_prefix": f"bench-curation-{label}-{uuid.uuid4().hex[:6]}."})
    create_topics(kafka)
    topics = StreamTopics.for_prefix(kafka.topic_prefix)
    watcher = TopicWatcher(kafka, topics.suggestions, topic_name(TAG_DECISIONS, kafka.topic_prefix))
    watcher.start()
    port = free_port()
    wlog, clog = logs / f"worker-{label}.log", logs / f"curate-{label}.log"
    worker = start_worker(kafka, bundle, online, wlog, port, logs / f"data-{label}")
    curate = start_curate(kafka, clog, logs / f"curation-{label}.db") if online else None
    try:
        ready_s = wait_for_line(worker, wlog, "Worker ready")
        if curate is not None:
            wait_for_line(curate, clog, "curate caught up")
        io = KafkaStreamIO(kafka, watcher, wlog if online else None)
        t0 = time.monotonic()
        steps = run_curated_stream(artworks, io) if online else run_backlog(artworks, io)
        elapsed = time.monotonic() - t0
    finally:
        stop_process(worker)
        if curate is not None:
            stop_process(curate)
        watcher.close()
    out: dict[str, Any] = {"steps": steps, "worker_ready_s": round(ready_s, 1), "seconds": round(elapsed, 1),
                           "topic_prefix": kafka.topic_prefix}
    if online:
        rules = CurationRules()
        state = fold_all(io.feedback_produced, rules)
        expected = {a: decisions_of(state, a, rules) for a in state.artworks}
        published = {a: d["decisions_id"] for a, d in watcher.decisions.items()}
        out["feedback_events"] = len(io.feedback_produced)
        out["decisions_records"] = watcher.decision_records
        out["lost"] = lost_feedback(io.feedback_produced, published, expected)
    return out


def lag_summary(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_s": None, "p99_s": None, "max_s": None}
    v = sorted(values)
    return {"p50_s": round(v[len(v) // 2], 3), "p99_s": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
            "max_s": round(v[-1], 3)}


def feedback_throughput(kafka, events: Sequence[TagFeedbackGiven], expected: dict[str, TagDecisionsChanged],
                        logs: Path, timeout_s: float = 1800) -> dict[str, Any]:
    """``events`` produced at once to a fresh feedback topic while ``arttag curate`` follows it;
    done when every artwork's last decisions record is the expected one (or nothing moved for
    a minute)."""
    from arttag.events import encode_event
    from arttag.kafka import make_producer
    from arttag.kafka.admin import create_topics
    from arttag.kafka.clients import flush_or_fail
    from arttag.kafka.topics import (
        TAG_DECISIONS,
        TAG_FEEDBACK,
        StreamTopics,
        topic_name,
    )

    kafka = kafka.model_copy(update={"topic_prefix": f"bench-curation-feedback-{uuid.uuid4().hex[:6]}."})
    create_topics(kafka)
    feedback_topic = topic_name(TAG_FEEDBACK, kafka.topic_prefix)
    watcher = TopicWatcher(kafka, StreamTopics.for_prefix(kafka.topic_prefix).suggestions,
                           topic_name(TAG_DECISIONS, kafka.topic_prefix))
    watcher.start()
    clog = logs / "curate-throughput.log"
    live_db = logs / "curation-throughput.db"
    curate = start_curate(kafka, clog, live_db)
    try:
        wait_for_line(curate, clog, "curate caught up")
        producer = make_producer(kafka)
        values = [(e.artwork_id.encode(), encode_event(e)) for e in events]
        t0 = time.monotonic()
        for key, value in values:
            while True:
                try:
                    producer.produce(feedback_topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
        flush_or_fail(producer)
        produced_s = time.monotonic() - t0

        def matching() -> int:
            return sum(watcher.decisions.get(a, {}).get("decisions_id") == r.decisions_id for a, r in expected.items())

        last, moved, deadline = -1, time.monotonic(), t0 + timeout_s
        while True:
            with watcher.cond:
                n, records = matching(), watcher.decision_records
            if n == len(expected):
                break
            if records != last:
                last, moved = records, time.monotonic()
            if time.monotonic() - moved > 60 or time.monotonic() > deadline:
                log.warning("feedback throughput: %d of %d artworks as expected when it stopped", n, len(expected))
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        with watcher.cond:
            published = {a: d["decisions_id"] for a, d in watcher.decisions.items()}
            records = watcher.decision_records
    finally:
        stop_process(curate)
        watcher.close()
    rebuilt = rebuild_matches(kafka, live_db, logs / "curation-rebuilt.db")
    return {"events": len(events), "artworks": len(expected), "produce_s": round(produced_s, 2),
            "rebuild_reproduces_database": rebuilt,
            "seconds": round(elapsed, 2), "events_per_s": round(len(events) / elapsed, 1),
            "decisions_records": records, **lost_feedback(events, published, expected)}


# -- the bundle ---------------------------------------------------------------------------------


def train(tate: Path, year: int, work: Path, embedding_cache: Path | None) -> Path:
    """Train the bundle on the artworks acquired before ``year`` with ``arttag train``."""
    data = work / f"pre{year}-train.jsonl.gz"
    rows = write_training_file(tate, data, year)
    log.info("training file %s: %d rows acquired before %d", data, rows, year)
    out = work / f"pre{year}"
    command = [sys.executable, "-m", "arttag_cli", "train", str(data), "--out", str(out), "--encoder", "onnx",
               "--json", str(work / f"pre{year}-eval.json")]
    if embedding_cache is not None:
        command += ["--embedding-cache", str(embedding_cache)]
    subprocess.run(command, check=True)
    return out


def shown_command(argv: Sequence[str]) -> str:
    """The command line as the results record it: no work folder (it changes nothing measured)."""
    words, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--work-dir":
            skip = True
        elif not a.startswith("--work-dir="):
            words.append(shown_path(a))
    return "python bench/curation.py " + shlex.join(words)


def shown_path(path: str) -> str:
    """A path as the results record it: as given when relative, else :func:`portable_path`."""
    return path if not os.path.isabs(path) else portable_path(path)


def bundle_info(bundle: Path) -> dict[str, Any]:
    from arttag.model.bundle import read_manifest

    m = read_manifest(bundle)
    metrics = m.get("metrics") or {}
    if isinstance(metrics, str):
        metrics = {}
    encoder = m.get("encoder")
    return {"path": shown_path(str(bundle)), "model_version": m.get("model_version"),
            "training_artworks": (m.get("training") or {}).get("artworks"),
            "rows_read": (m.get("data") or {}).get("rows_read"),
            "encoder": encoder.get("name") if isinstance(encoder, dict) else encoder,
            "scorers": m.get("scorers"),
            "dev_f1_at_5": (metrics.get("ensemble") or {}).get("f1_at_5")}


def vocabulary_ids(bundle: Path) -> set[str]:
    import csv

    from arttag.model.bundle import resolve_bundle

    with open(resolve_bundle(bundle) / "vocabulary.csv", encoding="utf-8", newline="") as fh:
        return {row["id"] for row in csv.DictReader(fh)}


# -- the run -------------------------------------------------------------------------------------


def print_table(result: dict[str, Any]) -> None:
    s = result.get("stream") or {}
    lines = []
    if s:
        lines.append(f"stream: {s['artworks']} artworks ({s['novel_text_artworks']} with novel text)")
        lines.append(f"{'run':<10}{'F1@5':>8}{'nDCG@10':>9}{'F1@5 novel':>12}{'nDCG@10 novel':>15}")
        for run in ("static", "online"):
            if run not in s:
                continue
            q = s[run]["quality"]
            lines.append(f"{run:<10}{q['all']['f1_at_5']:>8.4f}{q['all']['ndcg_at_10']:>9.4f}"
                         f"{q['novel_text']['f1_at_5']:>12.4f}{q['novel_text']['ndcg_at_10']:>15.4f}")
    crowd = result.get("crowd") or {}
    if crowd:
        lines.append(f"{'adversarial':<12}{'precision':>10}{'recall(voted)':>15}{'recall(all)':>13}{'accepted':>10}")
        for row in crowd["rows"]:
            lines.append(f"{row['adversarial_share']:<12.0%}{row['precision'] or 0:>10.4f}"
                         f"{row['recall_of_voted_true_tags'] or 0:>15.4f}{row['recall_of_all_true_tags'] or 0:>13.4f}"
                         f"{row['consensus_accepted']:>10}")
    ft = result.get("feedback_throughput") or {}
    if ft:
        lines.append(f"feedback: {ft['events']} events in {ft['seconds']} s = {ft['events_per_s']}/s, lost {ft['lost']}")
    lines.append(json.dumps(result.get("headline", {}), indent=2))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tate", type=Path, default=TATE, help="the full Tate catalogue (JSON lines, gzipped)")
    ap.add_argument("--bundle", type=Path, default=None, help="reuse this bundle instead of training one")
    ap.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "arttag-bench-curation",
                    help="training file, bundle, logs, broker")
    ap.add_argument("--embedding-cache", type=Path, default=None, help="passed to arttag train")
    ap.add_argument("--before", type=int, default=2000, help="train on artworks acquired before this year")
    ap.add_argument("--stream-artworks", type=int, default=2000, help="the first N of the stream (0: all)")
    ap.add_argument("--crowd-artworks", type=int, default=1500, help="suggestions the crowd votes on")
    ap.add_argument("--kafka-port", type=int, default=29092, help="this benchmark's own broker (and port+1)")
    ap.add_argument("--skip", choices=("static", "online", "crowd", "throughput"), action="append", default=[],
                    help="leave a part out (the crowd and the throughput need the static run)")
    ap.add_argument("--keep-previous", action="store_true",
                    help="keep the parts of --out that this run skips (same bundle and stream)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("arttag").setLevel(logging.WARNING)

    import onnxruntime

    args.work_dir.mkdir(parents=True, exist_ok=True)
    logs = args.work_dir / f"logs-{uuid.uuid4().hex[:6]}"
    logs.mkdir()
    result: dict[str, Any] = {
        "command": shown_command(argv if argv is not None else sys.argv[1:]),
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine_details(onnxruntime=onnxruntime.__version__,
                                   kafka=os.environ.get("KAFKA_VERSION", "3.9.2"),
                                   note="2 cores shared with other engineers' processes; speeds are noisy"),
    }
    bundle = args.bundle or train(args.tate, args.before, args.work_dir, args.embedding_cache)
    result["bundle"] = {**bundle_info(bundle), "trained_on": f"Tate artworks acquired before {args.before}",
                        "trained_here": args.bundle is None}
    artworks, counts = load_stream(args.tate, args.before, args.stream_artworks or None)
    vocab = vocabulary_ids(bundle)
    pairs = [(a, t) for a in artworks for t in a.truth]
    # a reused bundle must have been trained on exactly the rows acquired before the year
    result["bundle"]["matches_split"] = result["bundle"].get("rows_read") == counts["training_rows"]
    if not result["bundle"]["matches_split"]:
        log.warning("bundle %s read %s rows, not the %d acquired before %d: the stream is not unseen by it",
                    bundle, result["bundle"].get("rows_read"), counts["training_rows"], args.before)
    result["data"] = {**counts, "stream_artworks": len(artworks),
                      "stream_is_prefix": len(artworks) < counts["acquired_later_tagged"],
                      "true_tags_outside_vocabulary": round(sum(t not in vocab for _, t in pairs) / max(1, len(pairs)), 4)}
    if args.keep_previous and args.out.exists():
        # the parts skipped this time come from the previous run of the same stream and bundle
        previous = json.loads(args.out.read_text())
        same = (previous.get("bundle", {}).get("model_version") == result["bundle"]["model_version"]
                and previous.get("data", {}).get("stream_artworks") == len(artworks))
        if not same:
            raise SystemExit(f"{args.out} is from another bundle or stream: cannot keep its parts")
        for part in ("stream", "crowd", "feedback_throughput"):
            if part in previous:
                result[part] = previous[part]
        result["previous_parts_from"] = {"started_at": previous.get("started_at"), "command": previous.get("command"),
                                         "parts": [p for p in ("stream", "crowd", "feedback_throughput") if p in previous]}
    rules = CurationRules()
    broker = Broker(args.kafka_port, args.work_dir / "kafka")
    needs_broker = not {"static", "online", "throughput"} <= set(args.skip)
    from arttag.settings import KafkaSettings

    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap)

    def save() -> None:
        result["headline"] = headline(result)
        result["targets"] = TARGETS
        result["finished_at"] = datetime.now(UTC).isoformat()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")

    if needs_broker:
        broker.start()
    try:
        static = None
        steps_file = args.work_dir / "static-steps.json"
        if "static" not in args.skip:
            static = stream_run(kafka, bundle, artworks, False, logs)
            steps_file.write_text(json.dumps({
                "model_version": result["bundle"]["model_version"], "stream": [a.artwork_id for a in artworks],
                "steps": [s.__dict__ for s in static["steps"]]}))
            result["stream"] = {
                "artworks": len(artworks), "novel_text_artworks": sum(a.novel_text for a in artworks),
                "order": "accession number", "gold": "all true tags of the artwork (also those outside the vocabulary)",
                "static": {"quality": stream_quality(artworks, static["steps"]), "seconds": static["seconds"],
                           "how": "online learning off; published at once, one artwork per batch"},
            }
            save()
        elif args.keep_previous and steps_file.exists():
            saved = json.loads(steps_file.read_text())
            if (saved["model_version"], saved["stream"]) == (result["bundle"]["model_version"],
                                                             [a.artwork_id for a in artworks]):
                static = {"steps": [StepRecord(**step) for step in saved["steps"]]}
        crowd_events: list[TagFeedbackGiven] | None = None
        if static is not None and not {"crowd", "throughput"} <= set(args.skip):
            by_id = {a.artwork_id: a for a in artworks}
            suggestions = [VotedSuggestion(s.artwork_id, tuple(s.ranking[:5]), frozenset(by_id[s.artwork_id].truth),
                                           model_version=s.model_version)
                           for s in static["steps"][:args.crowd_artworks]]
            shares = ADVERSARIAL_SHARES if "crowd" not in args.skip else (0.2,)
            rows, runs = crowd_table(suggestions, rules, shares)
            crowd_events = runs[0.2].events
            if "crowd" not in args.skip:
                result["crowd"] = {"artworks": len(suggestions), "in_process": True,
                                   "params": {k: v for k, v in CrowdParams().__dict__.items() if k != "adversarial_share"},
                                   "rules": rules.__dict__, "rows": rows,
                                   "how": "votes and curator words folded in-process by arttag.curation.fold.apply; "
                                          "measured on artworks no curator reviewed, against their true tags"}
                save()
        if "throughput" not in args.skip and crowd_events is not None:
            expected_state = fold_all(crowd_events, rules)
            expected = {a: decisions_of(expected_state, a, rules) for a in expected_state.artworks}
            result["feedback_throughput"] = {**feedback_throughput(kafka, crowd_events, expected, logs),
                                             "workload": "the 20% adversarial crowd's votes and curator words"}
            save()
        if "online" not in args.skip and "static" in (result.get("stream") or {}):
            online = stream_run(kafka, bundle, artworks, True, logs)
            sq, oq = result["stream"]["static"]["quality"], stream_quality(artworks, online["steps"])
            steps = online["steps"]
            result["stream"]["online"] = {
                "quality": oq, "seconds": online["seconds"], "feedback_events": online["feedback_events"],
                "decisions_records": online["decisions_records"], "lost": online["lost"],
                "how": "one artwork at a time; the next is sent once the curator's decisions are on "
                       "the decisions topic and the worker's online learner has logged learning them",
                "suggestion_lag": lag_summary([s.suggestion_s for s in steps]),
                "decisions_lag": lag_summary([s.decisions_s for s in steps]),
                "learned_lag": lag_summary([s.learned_s for s in steps])}
            result["stream"]["gain"] = {
                "f1_at_5": gain(oq, sq, "all", "f1_at_5"), "ndcg_at_10": gain(oq, sq, "all", "ndcg_at_10"),
                "novel_text_f1_at_5": gain(oq, sq, "novel_text", "f1_at_5"),
                "novel_text_ndcg_at_10": gain(oq, sq, "novel_text", "ndcg_at_10")}
            save()
    finally:
        if needs_broker:
            broker.stop()
    save()
    print_table(result)
    return 0


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """Exactly :data:`HEADLINE_KEYS`; None for a part that did not run."""
    s, c, f = result.get("stream") or {}, result.get("crowd"), result.get("feedback_throughput")
    online = s.get("online")
    row20 = next((r for r in c["rows"] if r["adversarial_share"] == 0.2), None) if c else None
    lost = None
    if f is not None or online is not None:
        lost = (f["lost"] if f else 0) + (online["lost"]["lost"] if online else 0)
    return {
        "static_f1_at_5": s["static"]["quality"]["all"]["f1_at_5"] if s else None,
        "online_f1_at_5": online["quality"]["all"]["f1_at_5"] if online else None,
        "online_gain_f1_at_5": s["gain"]["f1_at_5"] if online else None,
        "novel_text_online_gain_f1_at_5": s["gain"]["novel_text_f1_at_5"] if online else None,
        "consensus_precision_at_20pct_adversarial": row20["precision"] if row20 else None,
        "consensus_recall_at_20pct_adversarial": row20["recall_of_voted_true_tags"] if row20 else None,
        "feedback_events_per_s": f["events_per_s"] if f else None,
        "lost_feedback": lost,
    }


if __name__ == "__main__":
    sys.exit(main())
