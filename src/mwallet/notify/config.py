"""Where notifications go, from the environment.

- `MWALLET_BROKER` (e.g. `amqp://guest:guest@127.0.0.1:5672//`): the relay publishes events to it
  and workers consume them. Unset (the embedded default): the relay turns events into deliveries
  itself, in-process.
- E-mail, SMS and push go to a spool folder (`MWALLET_HOME/spool/<channel>/`) unless a transport is
  configured for the channel.
"""

from __future__ import annotations

import os
from pathlib import Path

from mwallet.core.domain.notifications import Channel
from mwallet.core.services.notifications import Sender

BROKER_ENV = "MWALLET_BROKER"


def broker_url() -> str | None:
    return os.environ.get(BROKER_ENV) or None


def senders(home: Path) -> dict[Channel, Sender]:
    """A sender for each channel a worker sends on."""
    from mwallet.notify.spool import spool_senders

    chosen: dict[Channel, Sender] = dict(spool_senders(home / "spool"))
    return chosen
