"""A process keeps the instance's settings for a few seconds, then reads them again: a long-running
server sees what an admin changed from another process (here, the step-up amount) without a
restart, and its own changes at once."""

from __future__ import annotations

import pytest

from mwallet.bootstrap import Wallet
from mwallet.core.services import wallet_service
from tests.support import make_admin, open_wallet


def test_another_processs_change_is_seen_after_the_ttl(
    wallet: Wallet, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = wallet.service
    monkeypatch.setattr(wallet_service, "SETTINGS_TTL", 3600.0)  # no clock makes this flaky
    before = service.step_up_amount()
    with open_wallet(db_url) as other:
        admin = make_admin(other.service)
        other.service.set_step_up(actor=admin, amount=other.service.parse_money("50"))
        assert other.service.step_up_amount() == other.service.parse_money("50")  # its own: at once
    assert service.step_up_amount() == before  # still within the TTL: the settings it read
    monkeypatch.setattr(wallet_service, "SETTINGS_TTL", 0.0)
    assert service.step_up_amount() == service.parse_money("50")  # read again
