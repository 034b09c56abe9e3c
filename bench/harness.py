"""Plumbing the Kafka benchmarks share: a broker of their own, child processes with a log,
topics read from the beginning in a thread, and the result file.

Imported from beside it (the benchmarks put ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from machine_info import cpu_during_run

REPO = Path(__file__).resolve().parents[1]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"


class Broker:
    """A benchmark's own broker (deploy/kafka/kafka.sh with its own port and run folder)."""

    def __init__(self, port: int, run_dir: Path) -> None:
        self.port, self.run_dir = port, run_dir
        self.env = {**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1),
                    "KAFKA_RUN_DIR": str(run_dir)}
        self.outages: list[tuple[float, float]] = []  # (stop requested, ready again), monotonic

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, command: str) -> None:
        done = subprocess.run([str(KAFKA_SH), command], check=False, env=self.env, capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")

    def restart(self, down_s: float) -> dict[str, float]:
        """Stop, stay down ``down_s``, start again; the outage is kept in ``outages``."""
        t0 = time.monotonic()
        self.stop()
        stopped = time.monotonic()
        time.sleep(down_s)
        self.start()
        ready = time.monotonic()
        self.outages.append((t0, ready))
        return {"stop_s": stopped - t0, "down_s": ready - stopped, "t_stop": t0, "t_ready": ready}

    def in_outage(self, t: float, grace_s: float) -> bool:
        return any(a <= t <= b + grace_s for a, b in self.outages)


def kafka_env(kafka) -> dict[str, str]:
    """The settings that point an arttag process at ``kafka``'s broker and topics."""
    return {"ARTTAG_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "ARTTAG_KAFKA__TOPIC_PREFIX": kafka.topic_prefix}


def start_process(module: str, env: dict[str, str], log_path: Path, *, append: bool = False) -> subprocess.Popen:
    """``python -m module`` with ``env`` over this process's environment, stdout and stderr to
    ``log_path`` (appended to with ``append``: one log for the restarts of one identity)."""
    with open(log_path, "ab" if append else "wb") as fh:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "-m", module], env={**os.environ, **env}, stdout=fh,
                                stderr=subprocess.STDOUT)


def wait_for_line(proc: subprocess.Popen, log_path: Path, needle: str, timeout_s: float = 300) -> float:
    """Seconds until ``needle`` shows in the log; fails when the process exits or time runs out."""
    started = time.monotonic()
    while needle not in log_path.read_text(errors="replace"):
        if proc.poll() is not None:
            raise RuntimeError(f"{log_path.name}: exited: {log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() - started > timeout_s:
            raise RuntimeError(f"{log_path.name}: no {needle!r} in {timeout_s:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - started


class TopicReader(threading.Thread):
    """Reads ``topics`` from the beginning until :meth:`close`; a subclass's :meth:`handle` takes
    each record. A failing poll (the broker restarting under it) is counted in ``errors`` and
    the reading goes on, as does a record that carries an error."""

    poll_s = 0.05
    clock = staticmethod(time.monotonic)  # what ``now`` is measured with

    def __init__(self, kafka, topics: Sequence[str], *, name: str | None = None, **consumer_options: Any) -> None:
        super().__init__(daemon=True, name=name)
        from arttag.kafka.clients import consumer, partitions
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.c = consumer(kafka, **consumer_options)
        self.c.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in partitions(self.c, t)])
        self.stop_flag = threading.Event()
        self.errors: Counter[str] = Counter()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                msgs = self.c.consume(500, self.poll_s)
            except Exception as exc:  # noqa: BLE001 - keep reading through a broker restart
                self.errors[type(exc).__name__] += 1
                time.sleep(0.5)
                continue
            now = self.clock()
            for msg in msgs:
                if msg.error():
                    self.errors[str(msg.error().code())] += 1
                    continue
                self.handle(msg, now)
        self.c.close()

    def handle(self, msg, now: float) -> None:
        """One record without an error (its value may be None: a tombstone), read at ``now``."""
        raise NotImplementedError

    def close(self, timeout_s: float = 10) -> None:
        self.stop_flag.set()
        self.join(timeout_s)


def write_result(path: Path, result: dict[str, Any], *, measured: bool = True) -> None:
    """The result as indented JSON at ``path`` (its folder made), and its headline printed;
    ``measured``: this process ran the benchmark, so its CPU shares (busy, stolen) are added."""
    if measured:
        result.setdefault("cpu_during_run", cpu_during_run())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["headline"], indent=2))
