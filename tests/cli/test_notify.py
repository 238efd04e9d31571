"""`mwallet inbox`, `mwallet notify prefs|relay|worker` and `mwallet admin notify stats|dlq`
through the real entry point, embedded mode (no broker): the commands that read notifications
relay the outbox first. People and money are set up in-process on the same database, with the
real time, as the CLI uses.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mwallet.cli.exit_codes import ExitCode
from mwallet.core.clock import FixedClock
from mwallet.core.db.tables import outbox
from mwallet.core.domain.notifications import Channel, Delivery
from mwallet.core.domain.users import Principal
from mwallet.core.services.notifications import DeliveryFailed
from tests.cli.harness import Cli, seed_transfer, seed_user
from tests.support import PASSWORD, new_phone, open_wallet

USAGE = ExitCode.USAGE
NOT_FOUND = ExitCode.NOT_FOUND
FORBIDDEN = ExitCode.FORBIDDEN
NOTIFICATION_KEYS = {
    "id",
    "event_id",
    "channel",
    "kind",
    "to",
    "title",
    "body",
    "state",
    "attempts",
    "created_at",
    "sent_at",
    "read_at",
    "last_error",
}
STATES = {"queued", "sending", "sent", "retrying", "dead"}
UNKNOWN_ID = "01NOSUCHNOTIFICATION000000"


def seed_with_email(url: str, name: str, email: str) -> Principal:
    with open_wallet(url, FixedClock(datetime.now(UTC))) as wallet:
        service = wallet.service
        phone = new_phone()
        service.register(
            phone=phone, display_name=name, email=email, password=PASSWORD,
            idempotency_key=f"seed-{uuid.uuid4().hex}",
        )  # fmt: skip
        return service.login(phone=phone, password=PASSWORD).principal


def unpublished(url: str) -> int:
    """Events still to relay: the relay deletes those it hands on."""
    with open_wallet(url) as wallet, wallet.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def spooled(home: Path, channel: str) -> list[dict[str, Any]]:
    folder = home / "spool" / channel
    if not folder.is_dir():
        return []
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.glob("*.json"))]


class PhoneOff:
    """An SMS gateway that says the number is gone for good."""

    def send(self, delivery: Delivery) -> None:
        raise DeliveryFailed("number not in service", permanent=True)


# --- the inbox -----------------------------------------------------------------------------------
@pytest.mark.remote
def test_inbox_relays_first_then_lists_newest_first(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    bruno = seed_user(db_url, name="Bruno Sitoe")
    seed_transfer(db_url, ana, bruno, "42.50", None)
    assert unpublished(db_url) == 4
    cli.login(ana.phone)

    shown = cli.ok("inbox").stdout
    assert unpublished(db_url) == 0  # the embedded relay ran before the read
    for text in (
        "Money sent",
        "You sent $42.50 to Bruno Sitoe.",
        "Top-up received",
        "$100.00 was added to your wallet from sandbox.",
        "Welcome to mwallet",
    ):
        assert text in shown, shown
    assert shown.index("Money sent") < shown.index("Top-up received") < shown.index("Welcome")

    listed = cli.ok_json("inbox")
    assert [one["kind"] for one in listed] == ["transfer_sent", "topup", "welcome"]
    for one in listed:
        assert set(one) == NOTIFICATION_KEYS
        assert (one["channel"], one["state"], one["to"]) == ("inbox", "sent", ana.user_id)
        assert (one["attempts"], one["read_at"], one["last_error"]) == (0, None, None)
        assert one["created_at"].endswith("Z")
        assert one["sent_at"] == one["created_at"]
    assert listed[0]["body"] == "You sent $42.50 to Bruno Sitoe."

    assert [one["id"] for one in cli.ok_json("inbox", "--limit", "2")] == [
        listed[0]["id"],
        listed[1]["id"],
    ]
    assert cli.ok_json("inbox", "--before", listed[1]["id"]) == [listed[2]]
    assert cli.ok_json("inbox", "--unread") == listed  # nothing read yet
    assert "Your inbox is empty." in cli.ok("inbox", "--before", listed[2]["id"]).stdout
    assert "limit" in cli.fails(USAGE, "inbox", "--limit", "0")


@pytest.mark.remote
def test_inbox_read_shows_one_and_marks_it_read(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="100")
    cli.login(ana.phone)
    newest, welcome = cli.ok_json("inbox")
    shown = cli.ok("inbox", "read", newest["id"]).stdout
    assert shown == "Top-up received\n$100.00 was added to your wallet from sandbox.\n"
    assert [one["id"] for one in cli.ok_json("inbox", "--unread")] == [welcome["id"]]
    again = cli.ok_json("inbox", "read", newest["id"])
    assert set(again) == NOTIFICATION_KEYS
    assert again["read_at"] is not None


@pytest.mark.remote
def test_inbox_read_of_an_unknown_id_is_not_found(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    bruno = seed_user(db_url, name="Bruno Sitoe")
    cli.login(bruno.phone)
    (bruno_welcome,) = cli.ok_json("inbox")
    cli.login(ana.phone)
    line = cli.fails(NOT_FOUND, "inbox", "read", UNKNOWN_ID)
    assert UNKNOWN_ID in line
    assert cli.fails_json(NOT_FOUND, "inbox", "read", bruno_welcome["id"])["error"] == (
        "notification_not_found"
    )


# --- preferences ---------------------------------------------------------------------------------
@pytest.mark.remote
def test_notify_prefs_show_change_and_refuse_bad_values(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="2000")
    bruno = seed_user(db_url, name="Bruno Sitoe")
    cli.login(ana.phone)
    assert cli.ok("notify", "prefs").stdout == (
        "Language en; inbox on, email on, sms on, push off\n"
    )
    changed = cli.ok_json("notify", "prefs", "--language", "pt-mz", "--push", "on", "--sms", "off")
    assert changed == {"language": "pt-MZ", "email": True, "sms": False, "push": True}

    assert "--email" in cli.fails(USAGE, "notify", "prefs", "--email", "maybe")
    assert "pt-MZ" in cli.fails(USAGE, "notify", "prefs", "--language", "fr", "--email", "off")
    assert cli.fails_json(USAGE, "notify", "prefs", "--sms", "sometimes")["error"] == (
        "invalid_input"
    )
    assert cli.ok_json("notify", "prefs") == changed  # nothing changed by the refusals

    seed_transfer(db_url, ana, bruno, "1234.50", None)
    # Rendered in the language chosen (the deliveries of one relay pass share its millisecond).
    sent = next(one for one in cli.ok_json("inbox") if one["kind"] == "transfer_sent")
    assert (sent["title"], sent["body"]) == (
        "Dinheiro enviado",
        "Enviou 1\u00a0234,50\u00a0US$ para Bruno Sitoe.",
    )


# --- relay and worker ----------------------------------------------------------------------------
def test_notify_relay_once_moves_the_outbox_into_deliveries(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava", funds="10")
    cli.login(ana.phone)
    assert unpublished(db_url) == 2
    assert cli.ok_json("notify", "relay", "--once") == {"relayed": 2}
    assert unpublished(db_url) == 0
    assert "Relayed 0 event(s)." in cli.ok("notify", "relay", "--once").stdout


def test_notify_worker_once_spools_each_sms_and_e_mail_once(cli: Cli, db_url: str) -> None:
    ana = seed_with_email(db_url, "Ana Machava", "ana@example.org")
    bruno = seed_user(db_url, name="Bruno Sitoe", funds="50")
    seed_transfer(db_url, bruno, ana, "12.50", None)
    cli.login(ana.phone)

    report = cli.ok_json("notify", "worker", "--once")
    # SMS: both welcomes, Bruno's top-up, both sides of the transfer; e-mail: Ana's two.
    assert (report["sent"], report["retrying"], report["dead"]) == (7, 0, 0)
    sms = spooled(cli.home, "sms")
    emails = spooled(cli.home, "email")
    assert (len(sms), len(emails)) == (5, 2)
    assert spooled(cli.home, "push") == []
    received = [one for one in sms if one["to"] == ana.phone and "received" in one["body"]]
    assert received == [
        {
            "id": received[0]["id"],
            "channel": "sms",
            "to": ana.phone,
            "title": "Money received",
            "body": "mwallet: you received $12.50 from Bruno Sitoe.",
            "event_id": received[0]["event_id"],
        }
    ]
    assert {one["to"] for one in emails} == {"ana@example.org"}
    assert {one["body"] for one in emails} == {
        "You received $12.50 from Bruno Sitoe.",
        "Your wallet is open. Top up, send money and withdraw cash.",
    }
    assert not list((cli.home / "spool").rglob("*.part"))

    again = cli.ok_json("notify", "worker", "--once")
    assert (again["sent"], again["retrying"], again["dead"]) == (0, 0, 0)
    assert (len(spooled(cli.home, "sms")), len(spooled(cli.home, "email"))) == (5, 2)


# --- operators -----------------------------------------------------------------------------------
def test_admin_notify_stats_and_an_empty_dead_letter_queue(cli: Cli, db_url: str) -> None:
    seed_user(db_url, name="Ana Machava", funds="10")
    admin = cli.as_admin()
    stats = admin.ok_json("admin", "notify", "stats")
    assert set(stats) == {"channels", "outbox"}
    assert set(stats["channels"]) == {"email", "sms", "push"}
    for counts in stats["channels"].values():
        assert set(counts) == STATES | {"oldest_pending_age_s"}
        assert all(counts[state] == 0 for state in STATES)
        assert counts["oldest_pending_age_s"] is None
    assert set(stats["outbox"]) == {"backlog", "oldest_age_s"}
    assert stats["outbox"]["backlog"] == unpublished(db_url) == 3  # two registrations, a top-up
    assert isinstance(stats["outbox"]["oldest_age_s"], float)
    assert stats["outbox"]["oldest_age_s"] >= 0

    assert admin.ok_json("notify", "relay", "--once") == {"relayed": 3}
    stats = admin.ok_json("admin", "notify", "stats")
    assert stats["outbox"] == {"backlog": 0, "oldest_age_s": None}
    assert stats["channels"]["sms"]["queued"] == 3
    assert stats["channels"]["email"]["queued"] == 0
    shown = admin.ok("admin", "notify", "stats").stdout
    assert "Outbox: 0 event(s) to relay" in shown
    assert "sms" in shown

    assert admin.ok_json("admin", "notify", "dlq", "list") == []
    assert "No dead letters." in admin.ok("admin", "notify", "dlq", "list").stdout
    assert UNKNOWN_ID in admin.fails(NOT_FOUND, "admin", "notify", "dlq", "retry", UNKNOWN_ID)


def test_a_dead_letter_is_listed_retried_and_then_sent_by_the_worker(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    with open_wallet(db_url, FixedClock(datetime.now(UTC))) as wallet:
        wallet.service.relay_notifications()
        report = wallet.service.dispatch_notifications({Channel.SMS: PhoneOff()})
    assert report.dead == 1
    admin = cli.as_admin()

    (dead,) = admin.ok_json("admin", "notify", "dlq", "list")
    assert set(dead) == NOTIFICATION_KEYS
    assert (dead["channel"], dead["to"], dead["state"], dead["attempts"]) == (
        "sms",
        ana.phone,
        "dead",
        1,
    )
    assert dead["last_error"] == "number not in service"
    assert "number not in service" in admin.ok("admin", "notify", "dlq", "list").stdout

    retried = admin.ok_json("admin", "notify", "dlq", "retry", dead["id"])
    assert (retried["id"], retried["state"], retried["attempts"]) == (dead["id"], "queued", 0)
    assert admin.ok_json("admin", "notify", "dlq", "list") == []
    admin.fails(NOT_FOUND, "admin", "notify", "dlq", "retry", dead["id"])  # no longer dead

    admin.ok_json("notify", "worker", "--once")
    assert [one["id"] for one in spooled(admin.home, "sms") if one["to"] == ana.phone] == [
        dead["id"]
    ]


def test_a_customer_gets_exit_9_for_admin_notify_commands(cli: Cli, db_url: str) -> None:
    ana = seed_user(db_url, name="Ana Machava")
    cli.login(ana.phone)
    assert cli.fails_json(FORBIDDEN, "admin", "notify", "stats") == {
        "error": "permission_denied",
        "message": "a customer may not read notification statistics",
    }
    assert "may not" in cli.fails(FORBIDDEN, "admin", "notify", "dlq", "list")
    assert "may not" in cli.fails(FORBIDDEN, "admin", "notify", "dlq", "retry", UNKNOWN_ID)


def new_device_notices(cli: Cli) -> list[dict[str, Any]]:
    return [one for one in cli.ok_json("inbox") if one["kind"] == "login_new_device"]


@pytest.mark.remote
def test_a_login_from_another_device_is_a_security_notice(cli: Cli, db_url: str) -> None:
    """Each MWALLET_HOME is a device (its device.id): logging in again from it is nothing new,
    from another home is a notice in the inbox, on a database and through the server alike."""
    ana = seed_user(db_url, name="Ana Machava")
    cli.login(ana.phone)
    cli.login(ana.phone)
    assert new_device_notices(cli) == []
    laptop = Cli(home=cli.home.parent / "laptop", db=cli.db, cwd=cli.cwd,
                 extra_env=cli.extra_env)  # fmt: skip
    laptop.login(ana.phone)
    (notice,) = new_device_notices(cli)
    assert notice["title"] == "New device"
    laptop.login(ana.phone)
    assert len(new_device_notices(laptop)) == 1
