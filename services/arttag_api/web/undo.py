"""Undo for the review desk: each person's last action is held briefly before it is published.

The feedback topic is the truth and version 1 of ``TagFeedbackGiven`` has no way to take a
word back (an ``action`` value added within the version would break its readers), so undo
works before publishing, as "undo send" does in mail: a person's action waits in memory until
their next action, or ``window_s`` seconds, whichever comes first, then goes out. The event
(id and time) is built when the person acts, so a late publish changes no vote's time.

Trade-off: a held action lives in this process. A graceful stop publishes everything held;
a crash loses at most the last ``window_s`` seconds of each person's last action, and an undo
sent to another replica finds nothing to undo (it says so). ``window_s`` 0 turns undo off.

Example::

    buffer = UndoBuffer(publish=publisher.publish, window_s=10)
    buffer.start()
    buffer.hold(event)          # publishes this person's previous held event, if any
    buffer.undo(actor)          # the held event, now dropped; None when already published
    buffer.stop()               # publishes what is held
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from arttag.events import FeedbackActor, TagFeedbackGiven

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Held:
    event: TagFeedbackGiven
    held_at: float


def _who(actor: FeedbackActor) -> tuple[str, str]:
    return (actor.kind, actor.id)


class UndoBuffer:
    """At most one held event per actor; ``publish`` raises when the broker did not confirm,
    and the event stays held (the next tick tries again)."""

    def __init__(self, publish: Callable[[TagFeedbackGiven], None], window_s: float,
                 clock: Callable[[], float] = time.monotonic, tick_s: float = 0.25) -> None:
        self.publish = publish
        self.window_s = window_s
        self._clock = clock
        self._tick_s = tick_s
        self._held: dict[tuple[str, str], Held] = {}
        self._lock = threading.Lock()
        self._publish_lock = threading.Lock()  # one publish at a time keeps each actor's order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, event: TagFeedbackGiven) -> None:
        """Publish the actor's earlier held event (raises if that fails, holding nothing new),
        then hold ``event``; with no window, publish ``event`` at once."""
        self.flush_actor(event.actor)
        if self.window_s <= 0:
            with self._publish_lock:
                self.publish(event)
            return
        with self._lock:
            self._held[_who(event.actor)] = Held(event, self._clock())

    def held(self, actor: FeedbackActor) -> Held | None:
        with self._lock:
            return self._held.get(_who(actor))

    def undo(self, actor: FeedbackActor) -> TagFeedbackGiven | None:
        with self._lock:
            held = self._held.pop(_who(actor), None)
        return held.event if held is not None else None

    def remaining_s(self, held: Held) -> float:
        return max(0.0, self.window_s - (self._clock() - held.held_at))

    def flush_actor(self, actor: FeedbackActor) -> None:
        self._publish(lambda who, held: who == _who(actor))

    def flush_due(self) -> None:
        now = self._clock()
        self._publish(lambda who, held: now - held.held_at >= self.window_s)

    def flush_all(self) -> None:
        self._publish(lambda who, held: True)

    def _publish(self, chosen: Callable[[tuple[str, str], Held], bool]) -> None:
        with self._publish_lock:
            with self._lock:
                due = [(who, held) for who, held in self._held.items() if chosen(who, held)]
            for who, held in due:
                self.publish(held.event)  # raises: stays held
                with self._lock:
                    if self._held.get(who) is held:
                        del self._held[who]

    def start(self) -> None:
        if self.window_s > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="review-undo", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            try:
                self.flush_due()
            except Exception as exc:  # kept held and retried at the next tick
                log.error("held review feedback not published yet: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush_all()
        except Exception:
            lost = [h.event for h in self._held.values()]
            log.exception("review feedback held at shutdown could not be published: %s",
                          ", ".join(f"{e.event_id} (artwork {e.artwork_id}, tag {e.tag_id}, {e.action})"
                                    for e in lost))
