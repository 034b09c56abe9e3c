"""Undo holds each person's last action: the next action or the window publishes it; undo drops it."""

from __future__ import annotations

import pytest
from arttag.events import FeedbackActor, TagFeedbackGiven
from arttag_api.publisher import PublishError
from arttag_api.web.undo import UndoBuffer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _event(who: str, tag: str, action: str = "accepted") -> TagFeedbackGiven:
    return TagFeedbackGiven(artwork_id="A1", tag_id=tag, action=action, actor=FeedbackActor(kind="curator", id=who))


def test_the_next_action_publishes_the_held_one_and_undo_drops_the_last():
    published, clock = [], Clock()
    buffer = UndoBuffer(published.append, window_s=10, clock=clock)
    first, second, other = _event("c1", "t1"), _event("c1", "t2", "rejected"), _event("c2", "t9")
    buffer.hold(first)
    buffer.hold(other)
    assert published == []
    buffer.hold(second)
    assert published == [first]  # c1's earlier action went out; c2's is still theirs to undo
    assert buffer.undo(FeedbackActor(kind="curator", id="c1")) == second
    assert buffer.undo(FeedbackActor(kind="curator", id="c1")) is None
    clock.now = 10.0
    buffer.flush_due()
    assert published == [first, other]


def test_an_event_keeps_the_time_it_was_made_and_stays_held_when_publishing_fails():
    calls, clock = [], Clock()

    def publish(event):
        calls.append(event)
        if len(calls) == 1:
            raise PublishError("broker away")

    buffer = UndoBuffer(publish, window_s=5, clock=clock)
    event = _event("c1", "t1")
    buffer.hold(event)
    clock.now = 6.0
    with pytest.raises(PublishError):
        buffer.flush_due()
    assert buffer.held(event.actor).event == event  # kept, tried again
    buffer.flush_due()
    assert calls == [event, event] and buffer.held(event.actor) is None
    assert calls[1].occurred_at == event.occurred_at and calls[1].event_id == event.event_id


def test_no_window_publishes_at_once_and_stop_publishes_what_is_held():
    published = []
    at_once = UndoBuffer(published.append, window_s=0)
    e = _event("c1", "t1")
    at_once.hold(e)
    assert published == [e] and at_once.undo(e.actor) is None

    held = UndoBuffer(published.append, window_s=60)
    held.start()
    f = _event("c2", "t2")
    held.hold(f)
    held.stop()
    assert published == [e, f]
