"""Micro-batches from a faust stream that close when full, when idle, or when the window ends.

faust's ``Stream.take_events(max_, within)`` waits the whole ``within`` whenever
fewer than ``max_`` events are ready, after every batch: under light load each
artwork waits that long for nothing. :func:`take_batches` closes a batch when it
is full, when no event arrived for ``idle`` seconds (what was queued has been
taken), or ``within`` after the batch's first event, whichever comes first.
Under a backlog events keep arriving, so batches still fill to ``max_``.

The consumer acks the events itself, in the order they were taken (the worker does
once the batch's outputs are acknowledged, which may be after it has taken the next
batch); then faust may commit them. A batch the consumer never acks (it crashed or
was cancelled) is processed again after a restart.
"""

from __future__ import annotations

import asyncio
from asyncio import CancelledError
from collections.abc import AsyncIterator
from typing import Any

from mode.utils.aiter import aiter


async def take_batches(stream: Any, max_: int, within: float, idle: float) -> AsyncIterator[list[Any]]:
    """Yield lists of faust events (with ``.message``); see the module docstring."""
    buffer: list[Any] = []
    arrived = asyncio.Event()
    room = asyncio.Event()  # set while the buffer holds fewer than max_ events
    room.set()
    enable_acks = stream.enable_acks
    loop = asyncio.get_running_loop()

    async def add_to_buffer(value: Any) -> Any:
        try:
            # The next batch fills while the consumer handles this one (it is waiting for
            # its events, not for faust's delivery of them one by one, when it comes back),
            # but never beyond max_ events.
            while len(buffer) >= max_:
                room.clear()
                await stream.wait(room)
            event = stream.current_event
            if event is None:
                raise RuntimeError("batch buffer found no current event")
            buffer.append(event)
            arrived.set()
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - as faust's take: crash the stream, loudly
            stream.log.exception("Error adding to batch buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False  # the caller acks events once their batch was handled
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not buffer:
                arrived.clear()
                await stream.wait_for_stopped(arrived, timeout=within)
                if not buffer:
                    continue
            opened = loop.time()
            while len(buffer) < max_ and not stream.should_stop:
                remaining = within - (loop.time() - opened)
                if remaining <= 0:
                    break
                arrived.clear()
                await stream.wait_for_stopped(arrived, timeout=min(idle, remaining))
                if not arrived.is_set():
                    break  # idle: nothing more is queued
            batch = buffer[:max_]
            del buffer[:max_]
            room.set()
            yield batch
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
