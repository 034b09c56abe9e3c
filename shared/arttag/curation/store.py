"""The curation database: a SQL projection of the fold's state, for reading (docs/curation.md).

``arttag curate`` writes it after each batch of feedback it folds, by upserts of the rows that
changed, so a restart (which refolds the feedback topic from the beginning) converges on the
same rows, and
``arttag curate rebuild`` recreates it from the topic alone. The rows are pure functions of
:class:`~arttag.curation.state.CurationState` (``tag_rows``, ``vote_rows``,
``contributor_row``); this module only adds the SQL. SQLAlchemy 2 keeps one schema for
SQLite (the embedded default) and PostgreSQL (``postgresql+psycopg://``).

Only ``curation_contributor_tokens`` is not a projection: public contributors register
through the API, which keeps each token's sha256 here; a rebuild leaves it alone.

Example::

    store = CurationStore.open("sqlite:///curation.db")
    store.write(state, artwork_ids={"T01234"}, contributor_ids=set(), rules=CurationRules())
    [row.status for row in store.tags("T01234")]
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Float,
    Integer,
    String,
    Table,
    TypeDecorator,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from arttag.curation.consensus import consensus, tally
from arttag.curation.decisions import decide_tag
from arttag.curation.rules import CurationRules
from arttag.curation.state import CurationState, TagState
from arttag.curation.trust import confirmation_counts, fast_votes
from arttag.errors import ArttagError

ACCEPTED, REJECTED, PROPOSED = "accepted", "rejected", "proposed"


class UTCDateTime(TypeDecorator[datetime]):
    """A zone-aware UTC time on every backend: SQLite keeps no zone, so UTC goes in without one."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class TagRow(Base):
    """One (artwork, tag) anybody gave feedback on: its status and who decided it."""

    __tablename__ = "curation_tags"

    artwork_id: Mapped[str] = mapped_column(String, primary_key=True)
    tag_id: Mapped[str] = mapped_column(String, primary_key=True)
    label: Mapped[str | None] = mapped_column(String)
    status: Mapped[str] = mapped_column(String(8), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(9))
    curator_id: Mapped[str | None] = mapped_column(String)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[str | None] = mapped_column(String)
    suggestion_id: Mapped[str | None] = mapped_column(String)
    model_version: Mapped[str | None] = mapped_column(String)
    votes_for: Mapped[int] = mapped_column(Integer)
    votes_against: Mapped[int] = mapped_column(Integer)
    one_vote_from_consensus: Mapped[bool] = mapped_column(Boolean)


class VoteRow(Base):
    """A public contributor's newest vote on one (artwork, tag)."""

    __tablename__ = "curation_votes"

    artwork_id: Mapped[str] = mapped_column(String, primary_key=True)
    tag_id: Mapped[str] = mapped_column(String, primary_key=True)
    contributor_id: Mapped[str] = mapped_column(String, primary_key=True)
    vote: Mapped[str] = mapped_column(String(6))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    event_id: Mapped[str] = mapped_column(String)


class ContributorRow(Base):
    """A public contributor's record: what their weight is made of (:mod:`arttag.curation.trust`)."""

    __tablename__ = "curation_contributors"

    contributor_id: Mapped[str] = mapped_column(String, primary_key=True)
    votes: Mapped[int] = mapped_column(Integer)
    confirmed: Mapped[int] = mapped_column(Integer)
    contradicted: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    fast_votes: Mapped[int] = mapped_column(Integer)
    accept_share: Mapped[float] = mapped_column(Float)


class ContributorToken(Base):
    """A registered public contributor: the sha256 of their token, never the token."""

    __tablename__ = "curation_contributor_tokens"

    contributor_id: Mapped[str] = mapped_column(String, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


PROJECTION: tuple[type[Base], ...] = (TagRow, VoteRow, ContributorRow)
"""The tables a rebuild recreates from the feedback topic."""


# --- the rows as functions of the state ---------------------------------------------------

def near_consensus(tag: TagState, weights: dict[str, float], rules: CurationRules) -> bool:
    """Undecided, and one more vote (a newcomer's, weight 1.0) either way would decide it."""
    votes = {c: v.accept for c, v in tag.public.items()}
    if tag.curator is not None or consensus(tally(votes, weights), rules.min_contributors,
                                            rules.min_margin) is not None:
        return False
    for accept in (True, False):
        extra = {**votes, "\x00newcomer": accept}
        if consensus(tally(extra, weights), rules.min_contributors, rules.min_margin) is not None:
            return True
    return False


def tag_rows(state: CurationState, artwork_id: str, rules: CurationRules) -> list[dict[str, Any]]:
    """Every tag of the artwork as a ``curation_tags`` row. ``votes_for`` / ``votes_against``:
    contributors whose newest vote accepts / rejects, counted as consensus counts (weight > 0)."""
    rows = []
    for tag_id, tag in sorted(state.artworks[artwork_id].tags.items()):
        t = tally({c: v.accept for c, v in tag.public.items()}, state.weights)
        row: dict[str, Any] = {
            "artwork_id": artwork_id, "tag_id": tag_id, "label": tag.label, "status": PROPOSED,
            "decided_by": None, "curator_id": None, "decided_at": None, "event_id": None,
            "suggestion_id": None, "model_version": None,
            "votes_for": len(t.accepting), "votes_against": len(t.rejecting),
            "one_vote_from_consensus": near_consensus(tag, state.weights, rules),
        }
        outcome = decide_tag(tag_id, tag, state.weights, rules)
        if outcome is not None:
            accepted, d = outcome
            row.update(status=ACCEPTED if accepted else REJECTED, decided_by=d.decided_by,
                       curator_id=d.curator_id, decided_at=d.decided_at, event_id=d.event_id,
                       suggestion_id=d.suggestion_id, model_version=d.model_version)
        rows.append(row)
    return rows


def vote_rows(state: CurationState, artwork_id: str) -> list[dict[str, Any]]:
    return [
        {"artwork_id": artwork_id, "tag_id": tag_id, "contributor_id": contributor_id,
         "vote": "accept" if vote.accept else "reject", "at": vote.occurred_at, "event_id": vote.event_id}
        for tag_id, tag in sorted(state.artworks[artwork_id].tags.items())
        for contributor_id, vote in sorted(tag.public.items())
    ]


def contributor_row(state: CurationState, contributor_id: str, rules: CurationRules) -> dict[str, Any]:
    contributor = state.contributors[contributor_id]
    pairs = [(state.artworks[a].tags[t].public[contributor_id], state.artworks[a].tags[t].curator)
             for a, t in contributor.voted_on]
    confirmed, contradicted = confirmation_counts(pairs)
    votes = len(contributor.votes)
    return {
        "contributor_id": contributor_id, "votes": votes, "confirmed": confirmed,
        "contradicted": contradicted, "weight": state.weights.get(contributor_id, 1.0),
        "fast_votes": fast_votes([v.occurred_at for v in contributor.votes], rules.min_seconds_between_votes),
        "accept_share": sum(v.accept for v in contributor.votes) / votes if votes else 0.0,
    }


# --- SQL ------------------------------------------------------------------------------------

class StoreError(ArttagError):
    """The curation database cannot be opened or written."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: the API reads while `arttag curate` writes; busy_timeout: a writer waits for the other
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _upsert(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert, or overwrite the row with the same primary key (SQLite and PostgreSQL agree on
    ``ON CONFLICT ... DO UPDATE``): one statement executed for all ``rows`` (executemany; the
    driver batches it)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise StoreError(f"the curation database supports SQLite and PostgreSQL, not {conn.dialect.name}")
    keys = [c.name for c in table.primary_key.columns]
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys},
    )
    conn.execute(stmt, list(rows))


Held = dict[tuple[Any, ...], tuple[Any, ...]]
"""One table's rows as the database holds them: primary key -> every column's value."""


def _comparable(value: Any) -> Any:
    # a time as the database gives it back (zone-aware UTC), so an unchanged row compares equal
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


def _key_and_values(table: Table, row: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    values = tuple(_comparable(row[c.name]) for c in table.columns)
    return tuple(_comparable(row[c.name]) for c in table.primary_key.columns), values


def _read_held(conn: Connection, table: Table) -> Held:
    return dict(_key_and_values(table, row._mapping) for row in conn.execute(select(table)))


def _changed(table: Table, rows: Sequence[dict[str, Any]], held: Held) -> list[dict[str, Any]]:
    """The ``rows`` that are new or differ from what ``held`` says the database has."""
    out = []
    for row in rows:
        key, values = _key_and_values(table, row)
        if held.get(key) != values:
            out.append(row)
    return out


@dataclass(frozen=True)
class ContributorSummary:
    contributor_id: str
    votes: int
    confirmed: int
    contradicted: int
    weight: float
    fast_votes: int
    accept_share: float


class CurationStore:
    """The curation database behind one SQLAlchemy engine; safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # table name -> its rows as the database holds them; read on the first write, then kept
        # up to date by every write, so a write skips the rows that did not change
        self._held: dict[str, Held] | None = None
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, create: bool = True) -> CurationStore:
        """The database at ``url``, its tables created when missing (``create``).

        ``sqlite:///path`` creates the file's folder; ``sqlite://`` is an in-memory database
        shared by every thread of this process (tests, dry runs).
        """
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False}
            if parsed.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool
            else:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        elif parsed.get_backend_name() == "postgresql":
            kwargs["pool_pre_ping"] = True
        try:
            engine = create_engine(url, **kwargs)
        except Exception as exc:  # a missing driver or a malformed URL: say which setting
            raise StoreError(f"cannot open the curation database ({type(exc).__name__}: {exc}); "
                             "check ARTTAG_CURATION_DATABASE_URL") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if create:
            store.create()
        return store

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def create(self) -> None:
        Base.metadata.create_all(self.engine)

    def reset(self) -> None:
        """Drop and recreate the projection tables (a rebuild's first step); tokens stay."""
        tables = [model.__table__ for model in PROJECTION]
        with self._write_lock:
            Base.metadata.drop_all(self.engine, tables=tables)
            Base.metadata.create_all(self.engine)
            self._held = None

    def close(self) -> None:
        self.engine.dispose()

    # writing (the curate processor)

    def write(self, state: CurationState, *, artwork_ids: Iterable[str], contributor_ids: Iterable[str],
              rules: CurationRules) -> None:
        """Upsert the rows of these artworks (every tag and vote) and contributors, in one
        transaction: those that are new or differ from what the database holds (the first write
        reads the tables to know; a restart's refold then rewrites nothing that stayed the same)."""
        artworks = sorted(set(artwork_ids))
        rows = {
            TagRow.__table__: [row for a in artworks for row in tag_rows(state, a, rules)],
            VoteRow.__table__: [row for a in artworks for row in vote_rows(state, a)],
            ContributorRow.__table__: [contributor_row(state, c, rules) for c in sorted(set(contributor_ids))],
        }
        with self._write_lock:
            with self.engine.begin() as conn:
                held = self._held if self._held is not None else {
                    table.name: _read_held(conn, table) for table in rows}
                changed = {table: _changed(table, table_rows, held[table.name]) for table, table_rows in rows.items()}
                for table, table_rows in changed.items():
                    _upsert(conn, table, table_rows)
            # committed: only now is it what the database holds
            for table, table_rows in changed.items():
                held[table.name].update(_key_and_values(table, row) for row in table_rows)
            self._held = held

    def write_all(self, state: CurationState, rules: CurationRules) -> None:
        self.write(state, artwork_ids=state.artworks, contributor_ids=state.contributors, rules=rules)

    # reading (the API)

    def tags(self, artwork_id: str) -> list[TagRow]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(TagRow).where(TagRow.artwork_id == artwork_id)
                                        .order_by(TagRow.tag_id)))

    def tags_of(self, artwork_ids: Iterable[str]) -> dict[str, dict[str, TagRow]]:
        """artwork id -> tag id -> row, for many artworks at once (the review queue)."""
        ids = sorted(set(artwork_ids))
        held: dict[str, dict[str, TagRow]] = {}
        with Session(self.engine, expire_on_commit=False) as session:
            for i in range(0, len(ids), 500):
                for row in session.scalars(select(TagRow).where(TagRow.artwork_id.in_(ids[i:i + 500]))):
                    held.setdefault(row.artwork_id, {})[row.tag_id] = row
        return held

    def tag_statuses(self) -> dict[tuple[str, str], tuple[str, bool]]:
        """(artwork id, tag id) -> (status, one vote from consensus) for every tag with feedback:
        what the review queue needs, in one query (feedback is far sparser than suggestions)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(TagRow.artwork_id, TagRow.tag_id, TagRow.status,
                                       TagRow.one_vote_from_consensus))
            return {(a, t): (status, bool(near)) for a, t, status, near in rows}

    def votes(self, artwork_id: str) -> list[VoteRow]:
        with Session(self.engine, expire_on_commit=False) as session:
            return list(session.scalars(select(VoteRow).where(VoteRow.artwork_id == artwork_id)
                                        .order_by(VoteRow.tag_id, VoteRow.contributor_id)))

    def contributor(self, contributor_id: str) -> ContributorSummary | None:
        with Session(self.engine) as session:
            row = session.get(ContributorRow, contributor_id)
            if row is None:
                return None
            return ContributorSummary(row.contributor_id, row.votes, row.confirmed, row.contradicted,
                                      row.weight, row.fast_votes, row.accept_share)

    # public contributors (the API)

    def register_contributor(self, token_sha256: str) -> str:
        """A new contributor id (``pub-`` and 16 hex digits) for a token's digest."""
        contributor_id = f"pub-{secrets.token_hex(8)}"
        with Session(self.engine) as session, session.begin():
            session.add(ContributorToken(contributor_id=contributor_id, token_sha256=token_sha256,
                                         created_at=datetime.now(UTC)))
        return contributor_id

    def contributor_for_token(self, token_sha256: str) -> str | None:
        with Session(self.engine) as session:
            return session.scalar(select(ContributorToken.contributor_id)
                                  .where(ContributorToken.token_sha256 == token_sha256))

    def count(self, model: type[Base]) -> int:
        with Session(self.engine) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection row, sorted: what a rebuild must reproduce exactly."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as conn:
            for model in PROJECTION:
                table = model.__table__
                out[table.name] = sorted((tuple(r) for r in conn.execute(select(table))),
                                         key=lambda r: tuple(map(repr, r)))
        return out
