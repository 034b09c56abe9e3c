"""Micro-batches from a faust stream that close when full, when idle, or when the window ends.

faust's ``Stream.take_events(max_, within)`` waits the whole ``within`` whenever
fewer than ``max_`` events are ready, after every batch: under light load each
artwork waits that long for nothing. :func:`take_batches` closes a batch when it
is full, when no event arrived for ``idle`` seconds (what was queued has been
taken), or ``within`` after the batch's first event, whichever comes first.
Under a backlog events keep arriving, so batches still fill to ``max_``.

Events are acked only after the consumer's loop body for the batch has finished
normally (then faust may commit them); a body that raises or is cancelled leaves
its batch unacked.
"""

from __future__ import annotations

import asyncio
from asyncio import CancelledError
from collections.abc import AsyncIterator
from typing import Any

from mode.utils.aiter import aiter
from mode.utils.futures import notify


async def take_batches(stream: Any, max_: int, within: float, idle: float) -> AsyncIterator[list[Any]]:
    """Yield lists of faust events (with ``.message``); see the module docstring."""
    buffer: list[Any] = []
    arrived = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future | None = None
    enable_acks = stream.enable_acks
    loop = asyncio.get_running_loop()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:  # a batch is being processed: hold new events back
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("batch buffer found no current event")
            buffer.append(event)
            arrived.set()
            if len(buffer) >= max_:
                full.set()
                consumed.clear()
                await stream.wait(consumed)  # never more than max_ in a batch
        except CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - as faust's take: crash the stream, loudly
            stream.log.exception("Error adding to batch buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False  # events are acked below, after the batch was handled
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
            while not full.is_set() and not stream.should_stop:
                remaining = within - (loop.time() - opened)
                if remaining <= 0:
                    break
                arrived.clear()
                await stream.wait_for_stopped(arrived, timeout=min(idle, remaining))
                if not arrived.is_set():
                    break  # idle: nothing more is queued
            consuming = loop.create_future()
            batch = list(buffer)
            buffer.clear()
            # Unlike faust's take_events, a batch whose loop body did not finish (the agent
            # was cancelled or crashed, so this generator is closed at the yield) is never
            # acked: its offsets are not committed, and it is processed again after a restart.
            yield batch
            for event in batch:
                await stream.ack(event)
            notify(consuming)
            full.clear()
            consumed.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add_to_buffer)
