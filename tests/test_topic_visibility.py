"""Topics created by arttag are visible in the cluster metadata before create_topics returns."""

from __future__ import annotations

from types import SimpleNamespace

from arttag.kafka.admin import await_visible


class LaggingAdmin:
    """Metadata that lacks the topic on the first call, then lists it with one of its two partitions,
    and with both from the ``lag``-th call on (as a broker whose cache lags the controller)."""

    def __init__(self, lag: int) -> None:
        self.lag = lag
        self.calls = 0

    def list_topics(self, timeout: float) -> SimpleNamespace:
        self.calls += 1
        shown = {0: object(), 1: object()} if self.calls >= self.lag else {0: object()}
        return SimpleNamespace(topics={} if self.calls == 1 else {"a.v1": SimpleNamespace(error=None, partitions=shown)})


def test_waits_until_the_metadata_lists_the_topic_with_all_its_partitions():
    admin = LaggingAdmin(lag=4)
    assert await_visible(admin, ["a.v1"], partitions=2, timeout_s=5, poll_s=0.001)
    assert admin.calls == 4


def test_gives_up_after_the_timeout_and_says_so(caplog):
    admin = LaggingAdmin(lag=10**9)
    assert not await_visible(admin, ["a.v1"], partitions=2, timeout_s=0.05, poll_s=0.001)
    assert "not yet in the cluster metadata" in caplog.text


def test_nothing_to_wait_for():
    admin = LaggingAdmin(lag=10**9)
    assert await_visible(admin, [], partitions=2, timeout_s=1)
    assert admin.calls == 0
