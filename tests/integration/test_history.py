"""History and statements through the services, on SQLite and PostgreSQL.

One hand-computed fixture (`book`): a top-up, a transfer, a withdrawal with a fee that is then
cancelled, a declined bill, a transfer received, a transfer with a fee (as the transfer tariff
charges one: the sender's posting is amount + fee, the same entry credits `fees:USD`, and the
transfer's row records the fee), and airtime.
Every amount and balance below is worked out by hand from that story.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import threading
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from mwallet.bootstrap import Wallet
from mwallet.cli.statement_export import write_statement_csv, write_statement_json
from mwallet.core.clock import FixedClock
from mwallet.core.db.unit_of_work import SqlUnitOfWork
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    AccountKind,
    EntryKind,
    JournalEntry,
    Posting,
    fees_account_code,
    split,
    wallet_account_code,
)
from mwallet.core.domain.money import Money
from mwallet.core.domain.movements import MovementFilter, MovementType, day_start
from mwallet.core.domain.roles import Role
from mwallet.core.domain.tariffs import Movement, flat
from mwallet.core.domain.transfers import Transfer
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.errors import InvalidInput, PermissionDenied, UserNotFound
from mwallet.core.services.history import Statement
from mwallet.core.services.wallet_service import WalletService
from tests.support import PASSWORD, make_admin, register

PIN = "4729"
DAY_1 = day_start(date(2026, 1, 15))
DAY_2 = DAY_1 + timedelta(days=1)
DAY_3 = DAY_2 + timedelta(days=1)


def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def transfer_with_fee(
    wallet: Wallet, clock: FixedClock, sender: Principal, to: Principal, *, amount: str, fee: str
) -> str:
    """A transfer with a fee as the service writes one: one entry, the sender's posting amount +
    fee, and the fee in the transfer's row too (which history reads it from)."""
    uow = SqlUnitOfWork(wallet.engine)
    with uow:
        now = clock.now()
        fees_code = fees_account_code("USD")
        fees_id = uow.ledger.account_id(fees_code) or uow.ledger.open_account(
            code=fees_code, kind=AccountKind.FEES, currency="USD", owner_user_id=None,
            created_at=now,
        )  # fmt: skip
        sender_id = uow.ledger.account_id(wallet_account_code(sender.user_id))
        recipient_id = uow.ledger.account_id(wallet_account_code(to.user_id))
        assert sender_id is not None
        assert recipient_id is not None
        total = usd(amount) + usd(fee)
        entry = JournalEntry(
            new_id(now), EntryKind.TRANSFER, now,
            split(total, debit=sender_id,
                  credits=[(recipient_id, usd(amount)), (fees_id, usd(fee))]),
            "with a fee",
        )  # fmt: skip
        uow.ledger.post(entry)
        uow.transfers.add_transfer(
            Transfer(entry.id, sender.user_id, sender.phone, to.user_id, to.phone, usd(amount),
                     "with a fee", now, usd(fee).minor)
        )  # fmt: skip
        uow.commit()
    return entry.id


@dataclass
class Book:
    ana: Principal
    bruno: Principal
    admin: Principal


@pytest.fixture
def book(wallet: Wallet, clock: FixedClock) -> Book:
    service = wallet.service
    admin = make_admin(service)
    service.set_tariff(actor=admin, movement=Movement.WITHDRAWAL_ATM, tariff=flat(150))
    ana = register(service, name="Ana Machava")
    bruno = register(service, name="Bruno Tembe")
    service.topup(bruno, amount=usd("100"), source="sandbox", idempotency_key=key())
    clock.advance(timedelta(minutes=1))
    # Day 1
    service.topup(ana, amount=usd("500"), source="sandbox", idempotency_key=key())
    clock.advance(timedelta(hours=1))
    service.transfer(ana, to_phone=bruno.phone, amount=usd("42.50"), note="rent",
                     idempotency_key=key())  # fmt: skip
    clock.advance(timedelta(hours=1))
    issued = service.request_withdrawal(
        ana, amount=usd("60"), channel=Channel.ATM, pin=PIN, idempotency_key=key()
    )
    clock.advance(timedelta(minutes=10))
    service.cancel_withdrawal(ana, withdrawal_id=issued.withdrawal.id)
    # Day 2
    clock.advance(timedelta(days=1))
    declined = service.pay_bill(ana, biller_id="aguas-maputo", reference=_water("9991"),
                                amount=usd("30"), idempotency_key=key())  # fmt: skip
    assert declined.state.value == "failed"
    clock.advance(timedelta(hours=1))
    service.transfer(bruno, to_phone=ana.phone, amount=usd("10"), note="thanks",
                     idempotency_key=key())  # fmt: skip
    clock.advance(timedelta(hours=1))
    transfer_with_fee(wallet, clock, ana, bruno, amount="20", fee="0.75")
    clock.advance(timedelta(hours=1))
    service.pay_airtime(ana, phone=None, amount=usd("10"), idempotency_key=key())
    return Book(ana, bruno, admin)


def _water(prefix: str) -> str:
    from mwallet.core.domain.payments import luhn_digit

    body = f"{prefix}567"
    return body + luhn_digit(body)


# Ana's movements, newest first: (type, amount, balance after, state).
ANA = [
    ("airtime", "-10.00", "436.75", "succeeded"),
    ("fee", "-0.75", "446.75", "completed"),
    ("transfer_out", "-20.00", "447.50", "completed"),
    ("transfer_in", "10.00", "467.50", "completed"),
    ("reversal", "30.00", "457.50", "failed"),
    ("bill", "-30.00", "427.50", "failed"),
    ("reversal", "61.50", "457.50", "cancelled"),
    ("fee", "-1.50", "396.00", "cancelled"),
    ("withdrawal", "-60.00", "397.50", "cancelled"),
    ("transfer_out", "-42.50", "457.50", "completed"),
    ("topup", "500.00", "500.00", "completed"),
]


def shown(service: WalletService, who: Principal, **kwargs: object) -> list[tuple[str, ...]]:
    page = service.movements(who, limit=1000, **kwargs)  # type: ignore[arg-type]
    return [
        (
            line.type.value,
            line.amount.to_decimal_string(),
            line.balance_after.to_decimal_string(),
            line.state,
        )
        for line in page.movements
    ]


def test_every_movement_with_its_type_amount_balance_and_state(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    assert shown(service, book.ana) == ANA
    page = service.movements(book.ana, limit=1000)
    assert page.next_cursor is None
    by_type = {line.type: line for line in page.movements}
    assert by_type[MovementType.TRANSFER_OUT].counterparty == book.bruno.phone
    assert by_type[MovementType.TRANSFER_IN].counterparty == book.bruno.phone
    assert by_type[MovementType.TRANSFER_IN].note == "thanks"
    assert by_type[MovementType.TOPUP].counterparty == "sandbox"
    assert by_type[MovementType.WITHDRAWAL].counterparty == "atm"
    assert by_type[MovementType.BILL].counterparty == "Águas da Região de Maputo"
    assert by_type[MovementType.BILL].note == _water("9991")
    assert by_type[MovementType.AIRTIME].note == book.ana.phone
    # Each line's balance follows from the one before it.
    lines = page.movements
    for newer, older in itertools.pairwise(lines):
        assert older.balance_after + newer.amount == newer.balance_after
    assert lines[0].balance_after == service.balance(book.ana).available == usd("436.75")
    # Bruno's side of the transfer with a fee: 20.00 in, no fee.
    assert shown(service, book.bruno)[0] == ("transfer_in", "20.00", "152.50", "completed")


def test_an_agent_paying_out_sees_cash_out_and_the_customer_the_fee(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    admin = make_admin(service)
    service.set_tariff(actor=admin, movement=Movement.WITHDRAWAL_AGENT, tariff=flat(75))
    person = register(service, name="Agent Orange")
    service.add_agent(actor=admin, phone=person.phone)
    agent = service.login(phone=person.phone, password=PASSWORD).principal
    carla = register(service, name="Carla Mendes")
    service.topup(carla, amount=usd("100"), source="sandbox", idempotency_key=key())
    issued = service.request_withdrawal(
        carla, amount=usd("40"), channel=Channel.AGENT, pin=PIN, idempotency_key=key()
    )
    assert issued.code is not None
    service.redeem_withdrawal(agent, code=issued.code, pin=PIN)
    service.complete_withdrawal(agent, withdrawal_id=issued.withdrawal.id)

    assert shown(service, carla) == [
        ("fee", "-0.75", "59.25", "completed"),
        ("withdrawal", "-40.00", "60.00", "completed"),
        ("topup", "100.00", "100.00", "completed"),
    ]
    [paid_out] = service.movements(agent, limit=10).movements
    assert (paid_out.type, paid_out.amount, paid_out.counterparty) == (
        MovementType.CASH_OUT, usd("40"), carla.phone,
    )  # fmt: skip


def test_filters(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    ana = book.ana

    def only(**kwargs: object) -> list[tuple[str, ...]]:
        return shown(service, ana, where=MovementFilter(**kwargs))  # type: ignore[arg-type]

    assert only(types=frozenset({MovementType.FEE})) == [ANA[1], ANA[7]]
    assert only(types=frozenset({MovementType.REVERSAL, MovementType.BILL})) == [
        ANA[4], ANA[5], ANA[6],
    ]  # fmt: skip
    assert only(types=frozenset({MovementType.TRANSFER_OUT})) == [ANA[2], ANA[9]]
    assert only(counterparty=book.bruno.phone) == [ANA[1], ANA[2], ANA[3], ANA[9]]
    assert only(counterparty="SANDBOX") == [ANA[10]]
    assert only(min_minor=3000, max_minor=6000) == [ANA[4], ANA[5], ANA[8], ANA[9]]
    assert only(start=DAY_1, end=DAY_2) == ANA[6:]
    assert only(start=DAY_2) == ANA[:6]
    assert only(start=DAY_3) == []
    assert only(end=DAY_1) == []
    assert only(start=DAY_2, types=frozenset({MovementType.TRANSFER_OUT})) == [ANA[2]]
    # A phone number as people type it, in the instance's region... and a paged filter.
    page = service.movements(ana, where=MovementFilter(counterparty=book.bruno.phone), limit=3)
    assert page.next_cursor is not None
    rest = service.movements(
        ana, where=MovementFilter(counterparty=book.bruno.phone), cursor=page.next_cursor, limit=3
    )
    assert [line.cursor for line in page.movements + rest.movements] == [
        line.cursor
        for line in service.movements(ana, limit=1000).movements
        if line.counterparty == book.bruno.phone
    ]
    assert rest.next_cursor is None


def test_bad_filters_are_refused(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    with pytest.raises(InvalidInput, match="cursor"):
        service.movements(book.ana, cursor="abc")
    with pytest.raises(InvalidInput, match="cursor"):
        service.movements(book.ana, cursor="12.2")
    with pytest.raises(InvalidInput, match="start"):
        MovementFilter(start=DAY_2, end=DAY_1)
    with pytest.raises(InvalidInput, match="between 1 and"):
        service.movements(book.ana, limit=0)


def test_pages_neither_skip_nor_repeat_while_money_arrives(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = register(service, name="Ana")
    bruno = register(service, name="Bruno")
    service.topup(ana, amount=usd("1000"), source="sandbox", idempotency_key=key())
    service.topup(bruno, amount=usd("1000"), source="sandbox", idempotency_key=key())
    for number in range(8):
        clock.advance(timedelta(minutes=1))
        if number % 2:
            transfer_with_fee(wallet, clock, ana, bruno, amount=f"{number + 1}", fee="0.10")
        else:
            service.transfer(ana, to_phone=bruno.phone, amount=usd(f"{number + 1}"), note=None,
                             idempotency_key=key())  # fmt: skip
    before = service.movements(ana, limit=1000).movements
    assert len(before) == 1 + 8 + 4  # the top-up, 8 transfers, 4 fees

    seen = []
    cursor = None
    cursors = []
    while True:
        page = service.movements(ana, cursor=cursor, limit=4)
        seen += page.movements
        # Money keeps arriving between pages; it is newer than every page still to come.
        clock.advance(timedelta(seconds=1))
        service.transfer(bruno, to_phone=ana.phone, amount=usd("1"), note=None,
                         idempotency_key=key())  # fmt: skip
        if page.next_cursor is None:
            break
        cursors.append(page.next_cursor)
        cursor = page.next_cursor
    assert seen == before
    assert any(cursor.endswith(".1") for cursor in cursors)  # a page ended between a fee and its
    assert any(cursor.endswith(".0") for cursor in cursors)  # transfer, and another after one
    assert len(cursors) == 3  # four pages, four arrivals
    assert len(service.movements(ana, limit=1000).movements) == len(before) + 4


def test_statements_add_up_to_the_ledger(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    with service.statement(book.ana, start=DAY_1, end=DAY_2, count=True) as day_1:
        lines = list(day_1.lines)
    assert (day_1.opening, day_1.closing, day_1.postings) == (Money(0, "USD"), usd("457.50"), 4)
    assert [(line.type.value, line.amount.to_decimal_string()) for line in lines] == [
        (kind, amount) for kind, amount, _, _ in reversed(ANA[6:])
    ]
    totals = day_1.totals
    assert (totals.money_in, totals.money_out, totals.fees, totals.count) == (56150, 10400, 150, 5)

    with service.statement(book.ana, start=DAY_2, end=DAY_3) as day_2:
        assert len(list(day_2.lines)) == 6
    assert (day_2.opening, day_2.closing) == (usd("457.50"), usd("436.75"))
    assert (day_2.totals.money_in, day_2.totals.money_out) == (4000, 6075)
    # The closing balance of a period reaching today is the ledger's balance.
    with service.statement(book.ana, start=DAY_1) as everything:
        assert len(list(everything.lines)) == len(ANA)
    assert everything.closing == service.balance(book.ana).available == usd("436.75")
    assert wallet.service.verify_ledger(actor=book.admin).ok
    # In small batches the same lines come out.
    from mwallet.core.services import history

    with history.statement(
        SqlUnitOfWork(wallet.engine), service.clock, principal=book.ana,
        settings=service.settings, start=DAY_1, batch=2,
    ) as batched:  # fmt: skip
        assert [line.cursor for line in batched.lines] == [
            line.cursor for line in reversed(service.movements(book.ana, limit=100).movements)
        ]
    # A period before anything happened.
    with service.statement(book.ana, start=DAY_1 - timedelta(days=9), end=DAY_1) as empty:
        assert list(empty.lines) == []
    assert (empty.opening, empty.closing) == (Money(0, "USD"), Money(0, "USD"))


def test_exports_parse_back_to_the_same_totals(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    with service.statement(book.ana, start=DAY_2, end=DAY_3) as statement:
        out = io.StringIO()
        write_statement_csv(statement, statement.lines, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert rows[0]["type"] == "opening_balance"
    assert rows[0]["balance_after"] == "457.50"
    movements = rows[1:-3]
    assert len(movements) == 6
    money_in = sum(
        usd(row["amount"]).minor for row in movements if not row["amount"].startswith("-")
    )
    money_out = -sum(int(Money.parse(row["amount"].lstrip("-"), "USD").minor)
                     for row in movements if row["amount"].startswith("-"))  # fmt: skip
    assert {row["type"]: row for row in rows[-3:]}.keys() == {
        "total_in", "total_out", "closing_balance",
    }  # fmt: skip
    assert rows[-3]["amount"] == "40.00" == Money(money_in, "USD").to_decimal_string()
    assert rows[-2]["amount"] == "60.75" == Money(-money_out, "USD").to_decimal_string()
    assert rows[-1]["balance_after"] == "436.75"
    assert movements[-1]["balance_after"] == "436.75"

    with service.statement(book.ana, start=DAY_1) as statement:
        out = io.StringIO()
        write_statement_json(statement, statement.lines, out)
    document = json.loads(out.getvalue())
    assert document["opening_balance"] == "0.00"
    assert document["closing_balance"] == "436.75"
    assert len(document["movements"]) == document["count"] == len(ANA)
    ins = sum(usd(m["amount"]).minor for m in document["movements"] if m["amount"][0] != "-")
    outs = sum(usd(m["amount"][1:]).minor for m in document["movements"] if m["amount"][0] == "-")
    assert (document["total_in"], document["total_out"], document["total_fees"]) == (
        Money(ins, "USD").to_decimal_string(), Money(outs, "USD").to_decimal_string(), "2.25",
    )  # fmt: skip
    assert ins - outs == 43675


def test_who_may_read_whose_history(wallet: Wallet, book: Book) -> None:
    service = wallet.service
    with pytest.raises(PermissionDenied, match="may not read another person's history"):
        service.movements(book.bruno, phone=book.ana.phone)
    with (
        pytest.raises(PermissionDenied, match="statement"),
        service.statement(book.bruno, phone=book.ana.phone),
    ):
        pass  # pragma: no cover
    denials = [
        record for record in service.audit_log(actor=book.admin, limit=50)
        if record.action == "permission.denied"
    ]  # fmt: skip
    assert len(denials) == 2
    assert denials[0].actor == book.bruno.user_id
    # One's own phone is one's own history.
    assert len(service.movements(book.bruno, phone=book.bruno.phone).movements) == 4

    auditor_person = register(service, name="Audrey Auditor")
    service.set_role(actor=book.admin, phone=auditor_person.phone, role=Role.AUDITOR)
    auditor = service.login(phone=auditor_person.phone, password=PASSWORD).principal
    for reader in (book.admin, auditor):
        page = service.movements(reader, phone=book.ana.phone, limit=1000)
        assert page.owner.phone == book.ana.phone
        assert len(page.movements) == len(ANA)
        with service.statement(reader, phone=book.ana.phone) as statement:
            assert sum(1 for _ in statement.lines) == len(ANA)
    with pytest.raises(UserNotFound):
        service.movements(book.admin, phone="+258849999990")


def _agent(wallet: Wallet, book: Book) -> Principal:
    service = wallet.service
    service.set_tariff(actor=book.admin, movement=Movement.WITHDRAWAL_AGENT, tariff=flat(75))
    person = register(service, name="Agent Orange")
    service.add_agent(actor=book.admin, phone=person.phone)
    return service.login(phone=person.phone, password=PASSWORD).principal


def _minor(text: str) -> int:
    minor = Money.parse(text.lstrip("-"), "USD", allow_zero=True).minor
    return -minor if text.startswith("-") else minor


def _statement_csv(wallet: Wallet, who: Principal, batch: int) -> list[dict[str, str]]:
    from mwallet.core.services import history

    service = wallet.service
    with history.statement(
        SqlUnitOfWork(wallet.engine), service.clock, principal=who, settings=service.settings,
        batch=batch,
    ) as statement:  # fmt: skip
        out = io.StringIO()
        write_statement_csv(statement, statement.lines, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


@pytest.mark.parametrize("batch", [1, 3])
def test_a_statement_read_in_small_batches_is_the_history_line_for_line(
    wallet: Wallet, clock: FixedClock, book: Book, batch: int
) -> None:
    """Every kind of movement (fees on transfers and withdrawals, holds, reversals, a bill, a
    cash-out and a cash-in), in batches that split movements from their fees: the CSV rows are
    history's lines, every column, and they add up to the ledger."""
    service = wallet.service
    agent = _agent(wallet, book)
    service.topup(agent, amount=usd("100"), source="sandbox", idempotency_key=key())
    clock.advance(timedelta(hours=1))
    issued = service.request_withdrawal(
        book.ana, amount=usd("40"), channel=Channel.AGENT, pin=PIN, idempotency_key=key()
    )
    assert issued.code is not None
    service.redeem_withdrawal(agent, code=issued.code, pin=PIN)
    service.complete_withdrawal(agent, withdrawal_id=issued.withdrawal.id)
    clock.advance(timedelta(hours=1))
    service.cash_in(agent, to_phone=book.ana.phone, amount=usd("25"), idempotency_key=key())

    kinds_seen: set[str] = set()
    for who in (book.ana, agent):
        history = list(reversed(service.movements(who, limit=1000).movements))
        rows = _statement_csv(wallet, who, batch)
        lines = rows[1:-3]
        assert [tuple(row.values()) for row in lines] == [
            (
                line.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                line.type.value, line.counterparty or "", line.note or "",
                line.amount.to_decimal_string(), "USD", line.balance_after.to_decimal_string(),
                line.state, line.entry_id,
            )
            for line in history
        ]  # fmt: skip
        kinds_seen |= {row["type"] for row in lines}
        amounts = [_minor(row["amount"]) for row in lines]
        money_in = sum(amount for amount in amounts if amount > 0)
        money_out = -sum(amount for amount in amounts if amount < 0)
        assert [row["type"] for row in rows[-3:]] == ["total_in", "total_out", "closing_balance"]
        assert rows[-3]["amount"] == Money(money_in, "USD").to_decimal_string()
        assert rows[-2]["amount"] == Money(money_out, "USD").to_decimal_string()
        closing = service.balance(who).available
        assert _minor(rows[0]["balance_after"]) + money_in - money_out == closing.minor
        assert rows[-1]["balance_after"] == lines[-1]["balance_after"]
        assert rows[-1]["balance_after"] == closing.to_decimal_string()
    assert kinds_seen == {kind.value for kind in MovementType}
    # Ana: the book's eleven lines, then the agent withdrawal (40.00 and its 0.75 fee), cash-in.
    assert [row["type"] for row in _statement_csv(wallet, book.ana, batch)[-6:-3]] == [
        "withdrawal", "fee", "cash_in",
    ]  # fmt: skip


@pytest.mark.parametrize(("batch", "kept"), [(2000, 20_000), (7, 10)])
def test_a_statement_names_every_other_party_however_many_it_meets(
    wallet: Wallet, book: Book, monkeypatch: pytest.MonkeyPatch, batch: int, kept: int
) -> None:
    """A statement finds the other party's phone of its transfers itself, a hundred people at a
    time, and starts again when it meets more than it keeps: whatever it remembers, each line
    names the same person as history does."""
    from mwallet.core.db import movement_repository

    monkeypatch.setattr(movement_repository, "PHONES_KEPT", kept)
    service = wallet.service
    for _ in range(101):  # one more than the statement reads at a time
        sender = register(service)
        service.topup(sender, amount=usd("5"), source="sandbox", idempotency_key=key())
        service.transfer(sender, to_phone=book.ana.phone, amount=usd("1"), note=None,
                         idempotency_key=key())  # fmt: skip
        # Someone known between people not yet known: a batch needs both.
        service.transfer(book.ana, to_phone=book.bruno.phone, amount=usd("0.50"), note=None,
                         idempotency_key=key())  # fmt: skip
    service.transfer(book.ana, to_phone=sender.phone, amount=usd("2"), note=None,
                     idempotency_key=key())  # fmt: skip
    history = list(reversed(service.movements(book.ana, limit=1000).movements))
    rows = _statement_csv(wallet, book.ana, batch)[1:-3]
    assert [row["counterparty"] for row in rows] == [line.counterparty or "" for line in history]
    assert len({row["counterparty"] for row in rows if row["type"] == "transfer_in"}) == 102


def test_a_statement_left_half_read_gives_its_connection_back_clean(
    wallet: Wallet, book: Book
) -> None:
    from mwallet.core.services import history

    service = wallet.service

    def read(batch: int) -> AbstractContextManager[Statement]:
        return history.statement(
            SqlUnitOfWork(wallet.engine), service.clock, principal=book.ana,
            settings=service.settings, batch=batch,
        )  # fmt: skip

    def fail_after_three_lines() -> None:
        with read(2) as statement:
            for number, _line in enumerate(statement.lines):
                if number == 3:
                    raise ZeroDivisionError

    for _ in range(3):  # more times than an idle pool holds connections for a leak to show
        with read(2) as statement:
            assert next(statement.lines).type is MovementType.TOPUP
        with pytest.raises(ZeroDivisionError):
            fail_after_three_lines()
    assert service.balance(book.ana).available == usd("436.75")
    service.topup(book.ana, amount=usd("1"), source="sandbox", idempotency_key=key())
    assert len(service.movements(book.ana, limit=1000).movements) == len(ANA) + 1


def test_a_transfers_fee_is_what_its_entry_credited_to_fees(
    wallet: Wallet, clock: FixedClock, book: Book
) -> None:
    """History and statements read a transfer's fee from its row (`transfers.fee`), not from its
    entry's postings: for transfers the service makes under a tariff, and an agent's cash-in
    (free), each wallet's fee line is what the entry credited to `fees:USD`."""
    from sqlalchemy import text

    service = wallet.service
    service.set_tariff(actor=book.admin, movement=Movement.TRANSFER, tariff=flat(35))
    agent = _agent(wallet, book)
    service.topup(agent, amount=usd("100"), source="sandbox", idempotency_key=key())
    clock.advance(timedelta(hours=1))
    sent = service.transfer(book.ana, to_phone=book.bruno.phone, amount=usd("0.01"), note=None,
                            idempotency_key=key())  # fmt: skip
    clock.advance(timedelta(hours=1))
    given = service.cash_in(agent, to_phone=book.ana.phone, amount=usd("25"), idempotency_key=key())
    with wallet.engine.connect() as conn:
        credited: dict[str, int] = dict(
            conn.execute(
                text(
                    "SELECT p.entry_id, SUM(p.amount) FROM postings p JOIN accounts a"
                    " ON a.id = p.account_id WHERE a.code = :fees GROUP BY p.entry_id"
                ),
                {"fees": fees_account_code("USD")},
            ).all()
        )
    assert int(credited[sent.id]) == 35
    assert given.id not in credited
    for who in (book.ana, book.bruno, agent):
        history = list(reversed(service.movements(who, limit=1000).movements))
        for entry_id in (sent.id, given.id):
            fees = [line for line in history if line.entry_id == entry_id]
            shown = -sum(line.amount_minor for line in fees if line.type is MovementType.FEE)
            debited = any(line.amount_minor < 0 for line in fees)
            assert shown == (int(credited.get(entry_id, 0)) if debited else 0)
        rows = _statement_csv(wallet, who, 2)[1:-3]
        assert [(row["type"], row["amount"], row["counterparty"]) for row in rows] == [
            (line.type.value, line.amount.to_decimal_string(), line.counterparty or "")
            for line in history
        ]


def _post_on(wallet: Wallet, at: datetime, *legs: tuple[str, int]) -> str:
    """An entry at `at` of the given (account code, minor units) postings, posted as the ledger
    does."""
    uow = SqlUnitOfWork(wallet.engine)
    with uow:
        ids = {code: uow.ledger.account_id(code) or 0 for code, _ in legs}
        postings = tuple(Posting(ids[code], Money(minor, "USD")) for code, minor in legs)
        entry = JournalEntry(new_id(at), EntryKind.TOPUP, at, postings, "two legs on one account")
        uow.ledger.post(entry)
        uow.commit()
    return entry.id


def test_an_entry_with_two_postings_on_one_account_gives_each_a_time_of_its_own(
    wallet: Wallet, clock: FixedClock
) -> None:
    """Two legs of one entry on the same account: the second takes the microsecond after the
    first, both are shown, in the order the balance took them, across a page's end and a
    period's start at the second one's time."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=usd("100"), source="sandbox", idempotency_key=key())
    clock.advance(timedelta(minutes=1))
    mine, theirs = wallet_account_code(ana.user_id), wallet_account_code(bruno.user_id)
    at = clock.now()
    _post_on(wallet, at, (mine, -1000), (theirs, 1000), (mine, -100), (theirs, 100))

    report = service.verify_ledger(actor=make_admin(service))
    assert report.ok, report.problems
    first = service.movements(ana, limit=1)
    assert [line.balance_after for line in first.movements] == [usd("89")]
    assert first.next_cursor is not None
    second = service.movements(ana, cursor=first.next_cursor, limit=1)
    assert [line.balance_after for line in second.movements] == [usd("90")]
    third = service.movements(ana, cursor=second.next_cursor, limit=5)
    assert [line.balance_after for line in third.movements] == [usd("100")]
    assert third.next_cursor is None
    with service.statement(ana, start=at + timedelta(microseconds=1)) as later:
        assert later.opening == usd("90")
        assert [line.balance_after for line in later.lines] == [usd("89")]


def test_a_posting_that_waited_for_the_accounts_lock_comes_after_the_one_it_waited_for(
    wallet: Wallet, clock: FixedClock
) -> None:
    """A movement whose clock read earlier, but that reached the account after another one
    (on PostgreSQL it waits for that one's lock, and its UPDATE then reads the time that one
    committed), takes the microsecond after it: history keeps the order the balance took."""
    service = wallet.service
    ana, bruno = register(service), register(service)
    service.topup(ana, amount=usd("100"), source="sandbox", idempotency_key=key())
    mine, theirs = wallet_account_code(ana.user_id), wallet_account_code(bruno.user_id)
    early = clock.now() + timedelta(seconds=1)
    late = early + timedelta(seconds=5)
    holder = SqlUnitOfWork(wallet.engine)
    waited: list[str] = []
    with holder:
        ids = {code: holder.ledger.account_id(code) or 0 for code in (mine, theirs)}
        legs = (Posting(ids[mine], Money(-500, "USD")), Posting(ids[theirs], Money(500, "USD")))
        holder.ledger.post(JournalEntry(new_id(late), EntryKind.TOPUP, late, legs))
        # Another movement, timed earlier, posting to the same account meanwhile: on SQLite it
        # waits for the write lock, on PostgreSQL for the account's row.
        other = threading.Thread(
            target=lambda: waited.append(_post_on(wallet, early, (mine, -300), (theirs, 300)))
        )
        other.start()
        other.join(0.5)
        assert other.is_alive()  # still waiting
        holder.commit()
    other.join(10)
    assert waited

    lines = service.movements(ana, limit=5).movements
    assert [line.balance_after for line in lines] == [usd("92"), usd("95"), usd("100")]
    assert lines[0].created_at == late + timedelta(microseconds=1)
    assert service.verify_ledger(actor=make_admin(service)).ok


def test_a_cursor_from_before_posting_times_is_refused_not_read_as_the_end(
    wallet: Wallet, book: Book
) -> None:
    """Cursors named a posting's id before 0018 and name its time since: an id read as a time
    is a moment in 1970, below every posting, so a client paging across the upgrade would be
    told its history ended there. It is refused: the client starts again from the first page."""
    service = wallet.service
    first = service.movements(book.ana, limit=2)
    assert first.next_cursor is not None
    for stale in ("4096.0", "12.1", f"{10**15 - 1}.0"):
        with pytest.raises(InvalidInput, match="first page"):
            service.movements(book.ana, cursor=stale)
    assert service.movements(book.ana, cursor=first.next_cursor).movements  # today's still go
