"""Fixtures of the integration tests that need a message broker: the real RabbitMQ on this machine
(skipped when none answers, except in CI, where that is a failure) and a prefix of a test's own,
whose exchanges and queues are removed afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from uuid import uuid4

import pytest

from mwallet.notify.broker import remove_topology

BROKER_URL = os.environ.get("MWALLET_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def _broker_reachable(url: str) -> bool:
    from kombu.connection import Connection

    try:
        with Connection(url, connect_timeout=3) as connection:  # type: ignore[no-untyped-call]
            connection.connect()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """The test broker; skipped when none answers, except in CI, where that is a failure."""
    if not _broker_reachable(BROKER_URL):
        if os.environ.get("CI"):
            pytest.fail(f"RabbitMQ is not reachable at {BROKER_URL} and CI is set")
        pytest.skip("RabbitMQ is not reachable (set CI=true to make this a failure)")
    return BROKER_URL


@pytest.fixture
def prefix(rabbitmq_url: str) -> Iterator[str]:
    """A prefix of this test's own: its exchanges and queues, deleted afterwards."""
    name = f"test{uuid4().hex[:8]}"
    yield name
    remove_topology(rabbitmq_url, name)
