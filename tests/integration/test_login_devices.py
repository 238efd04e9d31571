"""A login from a device the person has not used before tells them (a security notice, on every
channel whatever their preferences); the first device, and devices seen before, do not."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.errors import InvalidCredentials
from tests.support import PASSWORD, register


def new_device_notices(wallet: Wallet, user_id: str) -> list[str]:
    wallet.service.relay_notifications()
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT channel FROM notifications WHERE user_id = :u AND kind = 'login_new_device'"
                " ORDER BY channel"
            ),
            {"u": user_id},
        ).all()
    return [row[0] for row in rows]


def audit_count(wallet: Wallet, action: str) -> int:
    with wallet.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT count(*) FROM audit_log WHERE action = :a"), {"a": action}
            ).scalar_one()
        )


def test_only_a_login_from_another_device_is_a_notice(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")  # logged in without a device id: not counted
    service.set_notification_preferences(ana, sms=False, email=False)

    service.login(phone=ana.phone, password=PASSWORD, device="phone-1")
    service.login(phone=ana.phone, password=PASSWORD, device="phone-1")
    assert new_device_notices(wallet, ana.user_id) == []  # the first device, then the same one

    service.login(phone=ana.phone, password=PASSWORD, device="laptop-2")
    # A security notice: the inbox and SMS (push too: security ignores preferences); no e-mail
    # because Ana gave none.
    assert new_device_notices(wallet, ana.user_id) == ["inbox", "push", "sms"]
    assert audit_count(wallet, "login.new_device") == 1

    service.login(phone=ana.phone, password=PASSWORD, device="laptop-2")
    service.login(phone=ana.phone, password=PASSWORD, device="phone-1")
    assert new_device_notices(wallet, ana.user_id) == ["inbox", "push", "sms"]  # nothing new

    (notice,) = [n for n in service.inbox(ana) if n.kind == "login_new_device"]
    assert notice.title == "New device"
    assert "change your password" in notice.body


def test_devices_are_per_person(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")
    bruno = register(service, name="Bruno Tembe")
    service.login(phone=ana.phone, password=PASSWORD, device="shared-tablet")
    service.login(phone=bruno.phone, password=PASSWORD, device="shared-tablet")
    assert new_device_notices(wallet, ana.user_id) == []
    assert new_device_notices(wallet, bruno.user_id) == []  # Bruno's first device
    with wallet.engine.connect() as conn:
        digests = conn.execute(text("SELECT device_digest FROM known_devices")).scalars().all()
    assert len(digests) == 2
    assert "shared-tablet" not in digests  # stored hashed


def test_a_failed_login_remembers_no_device(wallet: Wallet) -> None:
    service = wallet.service
    ana = register(service, name="Ana Machava")
    service.login(phone=ana.phone, password=PASSWORD, device="phone-1")
    with pytest.raises(InvalidCredentials):
        service.login(phone=ana.phone, password="wrong-password-1", device="thief-3")
    service.login(phone=ana.phone, password=PASSWORD, device="thief-3")
    assert new_device_notices(wallet, ana.user_id) == ["inbox", "push", "sms"]
