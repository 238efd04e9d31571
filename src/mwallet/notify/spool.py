"""The embedded default for e-mail, SMS and push: each delivery written to a spool folder, one
file per delivery named by its id (so sending twice writes the same file once).

Like a development mail backend, it lets every path run with nothing else installed; point
mwallet at an SMTP server and gateways (`mwallet.notify.config`) for real delivery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mwallet.core.domain.notifications import Channel, Delivery
from mwallet.core.services.notifications import DeliveryFailed


class SpoolSender:
    def __init__(self, folder: Path, channel: Channel) -> None:
        self.folder = folder / channel.value
        self.channel = channel

    def send(self, delivery: Delivery) -> None:
        document = {
            "id": delivery.id,
            "channel": delivery.channel.value,
            "to": delivery.address,
            "title": delivery.title,
            "body": delivery.body,
            "event_id": delivery.event_id,
        }
        target = self.folder / f"{delivery.id}.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            partial.write_text(json.dumps(document, ensure_ascii=False, indent=1), "utf-8")
            os.replace(partial, target)
        except OSError as exc:
            raise DeliveryFailed(f"cannot write to the spool {self.folder}: {exc}") from None

    def sent(self) -> list[dict[str, str]]:
        """What is in the spool, oldest first (for people and tests)."""
        if not self.folder.is_dir():
            return []
        return [json.loads(path.read_text("utf-8")) for path in sorted(self.folder.glob("*.json"))]


def spool_senders(folder: Path) -> dict[Channel, SpoolSender]:
    return {
        channel: SpoolSender(folder, channel)
        for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH)
    }
