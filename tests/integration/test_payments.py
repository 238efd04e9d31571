"""Bill payments through the services, on SQLite and PostgreSQL: every path through the sandbox
provider (approved, declined, unknown then reconciled to succeeded, failed or still unknown), a
payment left pending by a process that stopped, late and duplicate callbacks, a callback racing a
reconciliation, idempotency, a provider that raises, the refusals (funds, frozen wallet, disabled
biller, roles), the catalogue, and the notices people get.

Balances are computed by hand: the balance counts money held for a payment, available does not.
After every test the ledger verifies and sums to zero, the holds account holds exactly what the
pending and unknown payments (and pending or authorized withdrawals) hold, each biller's payable
account exactly the amounts of its succeeded payments, and the fees account the fees earned.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.ledger import (
    AccountStatus,
    fees_account_code,
    holds_account_code,
)
from mwallet.core.domain.money import Money
from mwallet.core.domain.payments import (
    Biller,
    Payment,
    PaymentState,
    ProviderAnswer,
    ProviderOutcome,
    luhn_digit,
    mod97_digits,
    payable_account_code,
)
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import Channel
from mwallet.core.errors import (
    BillerNotFound,
    IdempotencyKeyReused,
    InsufficientFunds,
    InvalidAmount,
    InvalidInput,
    PaymentNotFound,
    PermissionDenied,
    Refused,
    WalletError,
    WalletFrozen,
)
from mwallet.core.services.payments import STALE_PENDING, Reconciliation
from mwallet.core.services.wallet_service import WalletService
from tests.integration.cash_books import account_balance
from tests.support import OPERATOR, make_admin, open_wallet, register

WAIT = 60.0  # seconds: an upper bound for a thread, never a pause
SECOND = timedelta(seconds=1)
BILLERS = ("aguas-maputo", "edm-credelec", "tvcabo", "net-fibra")


# --- helpers -------------------------------------------------------------------------------------
def key() -> str:
    return f"k-{uuid.uuid4().hex}"


def water(prefix: str = "1234", n: int = 567) -> str:
    """An Águas da Região de Maputo reference: 7 digits starting `prefix`, then its Luhn digit."""
    body = f"{prefix}{n:03d}"
    return body + luhn_digit(body)


def power(prefix: str = "0123", n: int = 0) -> str:
    """An EDM Credelec reference: 10 digits starting `prefix`, then its Luhn digit."""
    body = f"{prefix}{n:06d}"
    return body + luhn_digit(body)


def usd(service: WalletService, amount: str) -> Money:
    return service.parse_money(amount)


def customer(service: WalletService, funds: str = "100", name: str = "Ana Machava") -> Principal:
    person = register(service, name=name)
    if funds != "0":
        service.topup(person, amount=usd(service, funds), source="sandbox", idempotency_key=key())
    return person


def pay(
    service: WalletService,
    person: Principal,
    amount: str,
    reference: str | None = None,
    *,
    biller: str = "aguas-maputo",
    idempotency_key: str | None = None,
) -> Payment:
    return service.pay_bill(
        person, biller_id=biller, reference=reference if reference is not None else water(),
        amount=usd(service, amount), idempotency_key=idempotency_key or key(),
    )  # fmt: skip


def bill_billers(service: WalletService, person: Principal) -> list[str]:
    """The ids of the sandbox's bill billers a person can pay, as listed (other products'
    billers, such as airtime operators, left out)."""
    return [one.id for one in service.billers(person) if one.id in BILLERS]


def balances(service: WalletService, person: Principal) -> tuple[str, str]:
    """(balance, available) as decimal strings: the balance counts held money, available not."""
    shown = service.balance(person)
    return shown.balance.to_decimal_string(), shown.available.to_decimal_string()


def payable(wallet: Wallet, biller_id: str) -> int:
    return account_balance(wallet, payable_account_code(biller_id))


def holds(wallet: Wallet) -> int:
    return account_balance(wallet, holds_account_code("USD"))


def state_of(service: WalletService, person: Principal, payment_id: str) -> Payment:
    return service.payment(person, payment_id=payment_id)[0]


def entry_kinds(wallet: Wallet, payment_id: str) -> list[str]:
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT kind FROM journal_entries WHERE memo = :memo ORDER BY id"),
            {"memo": f"payment {payment_id}"},
        ).all()
    return [str(row[0]) for row in rows]


def count(wallet: Wallet, table: str) -> int:
    with wallet.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def bill_events(wallet: Wallet, payment_id: str) -> list[str]:
    with wallet.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY event_id"),
            {"id": payment_id},
        ).all()
    return [str(row[0]) for row in rows]


def check_payment_books(wallet: Wallet) -> None:
    report = wallet.service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems
    assert all(total == 0 for total in report.totals_by_currency.values())
    with wallet.engine.connect() as conn:
        held_payments = conn.execute(
            text(
                "SELECT coalesce(sum(amount + fee), 0) FROM payments "
                "WHERE state IN ('pending', 'unknown')"
            )
        ).scalar_one()
        held_withdrawals = conn.execute(
            text(
                "SELECT coalesce(sum(amount + fee), 0) FROM withdrawals "
                "WHERE state IN ('pending', 'authorized', 'dispensing')"
            )
        ).scalar_one()
        fees = conn.execute(
            text(
                "SELECT (SELECT coalesce(sum(fee), 0) FROM withdrawals WHERE state = 'completed')"
                " + (SELECT coalesce(sum(fee), 0) FROM payments WHERE state = 'succeeded')"
            )
        ).scalar_one()
        paid: dict[str, int] = {
            str(row[0]): int(row[1])
            for row in conn.execute(
                text(
                    "SELECT b.id, coalesce(sum(p.amount), 0) FROM billers b LEFT JOIN payments p"
                    " ON p.biller_id = b.id AND p.state = 'succeeded' GROUP BY b.id"
                )
            ).all()
        }
    assert holds(wallet) == int(held_payments) + int(held_withdrawals)
    assert account_balance(wallet, fees_account_code("USD")) == int(fees)
    for biller_id, total in paid.items():
        assert payable(wallet, biller_id) == total, biller_id


class ProcessStopped(BaseException):  # a stand-in for a process killed mid-way
    """Not an Exception: nothing in the service catches it, as nothing catches SIGKILL."""


class ScriptedProvider:
    """A provider whose answers are scripted; it counts what it was asked."""

    def __init__(
        self,
        pay: ProviderAnswer | BaseException | None = None,
        status: ProviderAnswer | BaseException | None = None,
    ) -> None:
        self.pay = pay
        self.status_answer = status
        self.paid: list[str] = []
        self.asked: list[str] = []

    def _answer(
        self, scripted: ProviderAnswer | BaseException | None, payment: Payment
    ) -> ProviderAnswer:
        if isinstance(scripted, BaseException):
            raise scripted
        if scripted is None:
            return ProviderAnswer(ProviderOutcome.APPROVED, provider_ref=f"TP-{payment.id[-8:]}")
        return scripted

    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        self.paid.append(payment.id)
        return self._answer(self.pay, payment)

    def buy_airtime(self, payment: Payment, operator: Biller) -> ProviderAnswer:
        return self.pay_bill(payment, operator)

    def charge(self, payment: Payment, source: Biller) -> ProviderAnswer:
        return self.pay_bill(payment, source)

    def status(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        self.asked.append(payment.id)
        return self._answer(self.status_answer, payment)


def add_test_biller(
    service: WalletService,
    admin: Principal,
    provider: ScriptedProvider,
    biller_id: str = "test-bills",
) -> Biller:
    service.providers["test"] = provider
    return service.add_biller(
        actor=admin, biller_id=biller_id, name="Test Bills", category="other",
        min_amount=usd(service, "1"), max_amount=usd(service, "1000"), provider="test",
        pattern=r"[0-9]{6,20}",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def books_stay_sound(wallet: Wallet) -> Iterator[None]:
    yield
    check_payment_books(wallet)


@pytest.fixture
def admin(wallet: Wallet) -> Principal:
    return make_admin(wallet.service)


# --- the sandbox's paths -------------------------------------------------------------------------
def test_an_approved_bill_pays_the_biller(wallet: Wallet, clock: FixedClock) -> None:
    service = wallet.service
    ana = customer(service, "100")
    paid = pay(service, ana, "45.80", "1234 5674")

    assert paid.state is PaymentState.SUCCEEDED
    assert (paid.biller_id, paid.reference, paid.user_id) == (
        "aguas-maputo",
        "12345674",
        ana.user_id,
    )
    assert (paid.amount, paid.fee) == (usd(service, "45.80"), Money(0, "USD"))
    assert paid.provider_ref == f"SBX-{paid.id[-10:]}"
    assert paid.reason is None
    assert paid.created_at == paid.updated_at == clock.now()
    assert balances(service, ana) == ("54.20", "54.20")
    assert payable(wallet, "aguas-maputo") == 4580
    assert holds(wallet) == 0
    assert entry_kinds(wallet, paid.id) == ["payment_hold", "payment"]
    assert bill_events(wallet, paid.id) == ["BillPaid"]
    shown, biller = service.payment(ana, payment_id=paid.id)
    assert shown == paid
    assert biller.name == "Águas da Região de Maputo"
    assert service.list_payments(ana) == [paid]


def test_a_declined_bill_returns_all_the_money(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    declined = pay(service, ana, "30", water("9991"))

    assert declined.state is PaymentState.FAILED
    assert declined.reason == "account closed"
    assert declined.provider_ref is None
    assert balances(service, ana) == ("100.00", "100.00")
    assert payable(wallet, "aguas-maputo") == 0
    assert holds(wallet) == 0
    assert entry_kinds(wallet, declined.id) == ["payment_hold", "payment_release"]
    assert bill_events(wallet, declined.id) == ["BillFailed"]


@dataclass(frozen=True)
class Late:
    """A payment the provider did not answer, and what reconciling it comes to."""

    biller: str
    reference: str
    final: PaymentState
    counted: Reconciliation
    after: tuple[str, str]  # Ana's (balance, available) once reconciled


LATE = [
    Late("aguas-maputo", water("9992"), PaymentState.SUCCEEDED, Reconciliation(1, 0, 0),
         ("75.00", "75.00")),
    Late("edm-credelec", power("9993"), PaymentState.FAILED, Reconciliation(0, 1, 0),
         ("100.00", "100.00")),
    Late("tvcabo", "99940001", PaymentState.UNKNOWN, Reconciliation(0, 0, 1),
         ("100.00", "75.00")),
]  # fmt: skip


@pytest.mark.parametrize("late", LATE, ids=["late-approve", "late-decline", "never-known"])
def test_an_unknown_payment_holds_the_money_until_reconciled(
    wallet: Wallet, admin: Principal, clock: FixedClock, late: Late
) -> None:
    biller, reference, final = late.biller, late.reference, late.final
    service = wallet.service
    ana = customer(service, "100")
    timed_out = pay(service, ana, "25", reference, biller=biller)
    assert timed_out.state is PaymentState.UNKNOWN
    assert timed_out.reason == "the provider timed out"
    assert balances(service, ana) == ("100.00", "75.00")  # still Ana's, but held
    assert holds(wallet) == 2500
    assert entry_kinds(wallet, timed_out.id) == ["payment_hold"]
    assert bill_events(wallet, timed_out.id) == []

    clock.advance(SECOND)
    assert service.reconcile_payments(actor=admin) == late.counted
    done = state_of(service, ana, timed_out.id)
    assert done.state is final
    assert balances(service, ana) == late.after
    assert payable(wallet, biller) == (2500 if final is PaymentState.SUCCEEDED else 0)
    if final is PaymentState.SUCCEEDED:
        assert done.provider_ref == f"SBX-{done.id[-10:]}"
        assert done.updated_at == clock.now()
        assert bill_events(wallet, done.id) == ["BillPaid"]
    elif final is PaymentState.FAILED:
        assert done.reason == "account closed"
        assert bill_events(wallet, done.id) == ["BillFailed"]
    else:
        assert done == timed_out  # nothing learnt, nothing changed
        # Asked again later: still nobody knows; then the provider's callback settles it.
        assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 1)
        settled = service.settle_payment(
            payment_id=done.id,
            answer=ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="CB-1"),
        )
        assert settled is not None
        assert (settled.state, settled.provider_ref) == (PaymentState.SUCCEEDED, "CB-1")
        assert balances(service, ana) == ("75.00", "75.00")
        assert payable(wallet, biller) == 2500
    # Settled payments are not asked about again.
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 0)


def test_one_reconciliation_settles_many_payments_of_many_people(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "200", name="Bruno Sitoe")
    pay(service, ana, "10", water("9992", 1))
    pay(service, ana, "20", water("9993", 2))
    pay(service, bruno, "30", water("9994", 3))
    pay(service, bruno, "40", water("9992", 4))
    pay(service, bruno, "5")  # approved at once: not reconciled
    assert balances(service, ana) == ("100.00", "70.00")
    assert balances(service, bruno) == ("195.00", "125.00")
    assert holds(wallet) == 10000

    assert service.reconcile_payments(actor=admin) == Reconciliation(2, 1, 1)
    assert balances(service, ana) == ("90.00", "90.00")
    assert balances(service, bruno) == ("155.00", "125.00")
    assert holds(wallet) == 3000
    assert payable(wallet, "aguas-maputo") == 5500
    assert sorted(one.state.value for one in service.list_payments(bruno)) == [
        "succeeded",
        "succeeded",
        "unknown",
    ]


def test_a_net_fibra_bill_with_its_mod97_reference(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    body = "MZ4RT7890123"
    paid = pay(service, ana, "12.34", f"mz4r t789-0123{mod97_digits(body)}", biller="net-fibra")
    assert paid.state is PaymentState.SUCCEEDED
    assert paid.reference == body + mod97_digits(body)
    assert payable(wallet, "net-fibra") == 1234
    assert balances(service, ana) == ("87.66", "87.66")


# --- a process that stopped between the hold and the answer --------------------------------------
@pytest.mark.parametrize("answer", ["approved", "declined"])
def test_a_pending_payment_is_reconciled_only_once_stale(
    wallet: Wallet, admin: Principal, clock: FixedClock, answer: str
) -> None:
    service = wallet.service
    status = (
        None
        if answer == "approved"
        else ProviderAnswer(ProviderOutcome.DECLINED, reason="no such account")
    )
    provider = ScriptedProvider(pay=ProcessStopped(), status=status)
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    payment_key = key()
    with pytest.raises(ProcessStopped):
        pay(service, ana, "40", "123456", biller="test-bills", idempotency_key=payment_key)
    (left,) = service.list_payments(ana)
    assert left.state is PaymentState.PENDING
    assert balances(service, ana) == ("100.00", "60.00")
    assert holds(wallet) == 4000
    assert len(provider.paid) == 1

    # The request again (the same key): the payment as it is, and the provider is not asked.
    again = pay(service, ana, "40", "123456", biller="test-bills", idempotency_key=payment_key)
    assert again == left
    assert len(provider.paid) == 1

    # Its process may still be waiting for the provider: not reconciled before STALE_PENDING.
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 0)
    clock.advance(STALE_PENDING - SECOND)
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 0)
    assert provider.asked == []
    assert state_of(service, ana, left.id).state is PaymentState.PENDING

    clock.advance(SECOND)
    expected = Reconciliation(1, 0, 0) if answer == "approved" else Reconciliation(0, 1, 0)
    assert service.reconcile_payments(actor=admin) == expected
    assert provider.asked == [left.id]
    done = state_of(service, ana, left.id)
    if answer == "approved":
        assert (done.state, done.provider_ref) == (PaymentState.SUCCEEDED, f"TP-{left.id[-8:]}")
        assert balances(service, ana) == ("60.00", "60.00")
        assert payable(wallet, "test-bills") == 4000
    else:
        assert (done.state, done.reason) == (PaymentState.FAILED, "no such account")
        assert balances(service, ana) == ("100.00", "100.00")
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 0)
    assert provider.asked == [left.id]


def test_a_stale_pending_payment_the_provider_cannot_answer_becomes_unknown(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    provider = ScriptedProvider(pay=ProcessStopped(), status=RuntimeError("gateway down"))
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    with pytest.raises(ProcessStopped):
        pay(service, ana, "40", "123456", biller="test-bills")
    clock.advance(STALE_PENDING)
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 1)
    (left,) = service.list_payments(ana)
    assert (left.state, left.reason) == (PaymentState.UNKNOWN, "RuntimeError")
    assert balances(service, ana) == ("100.00", "60.00")
    # Unknown now: asked at every reconciliation, stale or not.
    provider.status_answer = None
    assert service.reconcile_payments(actor=admin) == Reconciliation(1, 0, 0)
    assert balances(service, ana) == ("60.00", "60.00")


# --- callbacks -----------------------------------------------------------------------------------
@pytest.mark.parametrize("reference", [water(), water("9991")], ids=["approved", "declined"])
def test_a_late_callback_after_the_payment_was_settled_moves_nothing(
    wallet: Wallet, reference: str
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    settled = pay(service, ana, "20", reference)
    before = (balances(service, ana), payable(wallet, "aguas-maputo"), count(wallet, "postings"))
    for outcome in ProviderOutcome:
        answer = ProviderAnswer(outcome, provider_ref="LATE", reason="late")
        assert service.settle_payment(payment_id=settled.id, answer=answer) is None
    assert state_of(service, ana, settled.id) == settled
    assert (balances(service, ana), payable(wallet, "aguas-maputo"), count(wallet, "postings")) == (
        before
    )
    assert len(bill_events(wallet, settled.id)) == 1


def test_duplicate_callbacks_settle_once(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    unknown = pay(service, ana, "20", water("9994"))
    # A callback that knows nothing more changes nothing and says so with the payment itself.
    nothing = ProviderAnswer(ProviderOutcome.UNKNOWN, reason="still processing")
    assert service.settle_payment(payment_id=unknown.id, answer=nothing) == unknown

    approved = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="CB-42")
    first = service.settle_payment(payment_id=unknown.id, answer=approved)
    assert first is not None
    assert (first.state, first.provider_ref) == (PaymentState.SUCCEEDED, "CB-42")
    assert service.settle_payment(payment_id=unknown.id, answer=approved) is None
    declined = ProviderAnswer(ProviderOutcome.DECLINED, reason="changed its mind")
    assert service.settle_payment(payment_id=unknown.id, answer=declined) is None
    assert service.settle_payment(payment_id=unknown.id, answer=nothing) is None
    assert state_of(service, ana, unknown.id) == first
    assert balances(service, ana) == ("80.00", "80.00")
    assert payable(wallet, "aguas-maputo") == 2000
    assert entry_kinds(wallet, unknown.id) == ["payment_hold", "payment"]
    assert bill_events(wallet, unknown.id) == ["BillPaid"]


@pytest.mark.parametrize(
    ("reference", "contrary"),
    [(water("1234"), ProviderOutcome.DECLINED), (water("9991"), ProviderOutcome.APPROVED)],
)
def test_a_late_answer_contradicting_the_settlement_is_audited_and_moves_nothing(
    wallet: Wallet, admin: Principal, reference: str, contrary: ProviderOutcome
) -> None:
    """The books keep the first answer (money moves once), but a provider saying the opposite
    afterwards means money is owed to or by someone: an operator must hear of it."""
    service = wallet.service
    ana = customer(service, "100")
    settled = pay(service, ana, "20", reference)
    before = (balances(service, ana), count(wallet, "postings"))
    approved, declined = ProviderOutcome.APPROVED, ProviderOutcome.DECLINED
    agreeing = approved if contrary is declined else declined
    for outcome in (agreeing, ProviderOutcome.UNKNOWN):  # a duplicate, a shrug: nothing to say
        assert service.settle_payment(payment_id=settled.id, answer=ProviderAnswer(outcome)) is None
    answer = ProviderAnswer(contrary, provider_ref="LATE-1", reason="changed its mind")
    assert service.settle_payment(payment_id=settled.id, answer=answer) is None
    assert (balances(service, ana), count(wallet, "postings")) == before
    found = [
        (one.subject, one.details) for one in service.audit_log(actor=admin, limit=100)
        if one.action == "payment.answer_contradicted"
    ]  # fmt: skip
    assert found == [
        (settled.id, {"state": settled.state.value, "answer": contrary.value,
                      "provider_ref": "LATE-1", "reason": "changed its mind"})
    ]  # fmt: skip


def test_a_callback_about_no_payment_is_not_found(wallet: Wallet) -> None:
    answer = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="X")
    with pytest.raises(PaymentNotFound):
        wallet.service.settle_payment(payment_id="01HZZZZZZZZZZZZZZZZZZZZZZZ", answer=answer)


def test_a_callback_declining_an_unknown_payment_returns_the_money(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    unknown = pay(service, ana, "20", water("9992"))
    done = service.settle_payment(
        payment_id=unknown.id,
        answer=ProviderAnswer(ProviderOutcome.DECLINED, reason="x" * 300),
    )
    assert done is not None
    assert done.state is PaymentState.FAILED
    assert done.reason == "x" * 200  # kept to the column's width
    assert balances(service, ana) == ("100.00", "100.00")


def race_callback_and_reconcile(
    callback_on: WalletService, reconcile_on: WalletService, admin: Principal, payment_id: str
) -> list[object]:
    """A provider's callback (approved) on one instance and a reconciliation on another, at the
    same moment, each in its own thread; what each returned (or raised)."""
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def callback() -> None:
        start.wait(WAIT)
        answer = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="CALLBACK")
        try:
            outcomes.append(callback_on.settle_payment(payment_id=payment_id, answer=answer))
        except WalletError as exc:
            outcomes.append(exc)

    def reconcile() -> None:
        start.wait(WAIT)
        try:
            outcomes.append(reconcile_on.reconcile_payments(actor=admin))
        except WalletError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=callback), threading.Thread(target=reconcile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    return outcomes


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # concurrent writers' row locks
def test_a_callback_and_a_reconciliation_at_once_move_the_money_once(
    wallet: Wallet, db_url: str, admin: Principal
) -> None:
    service = wallet.service
    ana = customer(service, "500")
    with open_wallet(db_url) as other:  # another engine, like another process
        for number in range(3):
            unknown = pay(service, ana, "50", water("9992", number))
            outcomes = race_callback_and_reconcile(other.service, service, admin, unknown.id)
            assert len(outcomes) == 2, outcomes
            assert not any(isinstance(one, WalletError) for one in outcomes), outcomes
            settled = [one for one in outcomes if isinstance(one, Payment)]
            (counted,) = [one for one in outcomes if isinstance(one, Reconciliation)]
            # Exactly one of the two settled it; the other found it settled.
            assert len(settled) + counted.succeeded == 1, outcomes
            assert counted.failed == counted.still_unknown == 0
            done = state_of(service, ana, unknown.id)
            assert done.state is PaymentState.SUCCEEDED
            assert done.provider_ref == ("CALLBACK" if settled else f"SBX-{done.id[-10:]}")
            assert entry_kinds(wallet, unknown.id) == ["payment_hold", "payment"]
            assert bill_events(wallet, unknown.id) == ["BillPaid"]
    assert balances(service, ana) == ("350.00", "350.00")
    assert payable(wallet, "aguas-maputo") == 15000
    assert holds(wallet) == 0


# --- idempotency ---------------------------------------------------------------------------------
def test_the_same_key_and_request_returns_the_same_payment_without_asking_again(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    provider = ScriptedProvider()
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    payment_key = key()
    first = pay(service, ana, "30", "123 456", biller="test-bills", idempotency_key=payment_key)
    assert first.state is PaymentState.SUCCEEDED
    # The same reference typed another way, the biller id in capitals: the same request.
    again = pay(service, ana, "30.00", "123-456", biller="TEST-BILLS", idempotency_key=payment_key)
    assert again == first
    assert provider.paid == [first.id]
    assert balances(service, ana) == ("70.00", "70.00")
    assert payable(wallet, "test-bills") == 3000
    assert count(wallet, "payments") == 1

    for amount, reference, biller in (
        ("31", "123456", "test-bills"),
        ("30", "123457", "test-bills"),
        ("30", water(), "aguas-maputo"),
    ):
        with pytest.raises(IdempotencyKeyReused):
            pay(service, ana, amount, reference, biller=biller, idempotency_key=payment_key)
    assert provider.paid == [first.id]
    assert count(wallet, "payments") == 1
    assert balances(service, ana) == ("70.00", "70.00")

    # Keys are each person's own: Bruno's payment with the same key is his, and a new one.
    bruno = customer(service, "100", name="Bruno Sitoe")
    his = pay(service, bruno, "30", "123456", biller="test-bills", idempotency_key=payment_key)
    assert his.id != first.id
    assert provider.paid == [first.id, his.id]


def test_a_key_used_for_a_transfer_cannot_pay_a_bill(wallet: Wallet) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "0", name="Bruno Sitoe")
    shared = key()
    service.transfer(
        ana, to_phone=bruno.phone, amount=usd(service, "10"), note=None, idempotency_key=shared
    )
    with pytest.raises(IdempotencyKeyReused):
        pay(service, ana, "10", idempotency_key=shared)
    assert count(wallet, "payments") == 0


@pytest.mark.parametrize("reference", [water("9991"), water("9994")], ids=["declined", "unknown"])
def test_a_replayed_declined_or_unknown_payment_is_returned_as_it_is(
    wallet: Wallet, reference: str
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    payment_key = key()
    first = pay(service, ana, "20", reference, idempotency_key=payment_key)
    postings = count(wallet, "postings")
    assert pay(service, ana, "20", reference, idempotency_key=payment_key) == first
    assert count(wallet, "postings") == postings
    assert count(wallet, "payments") == 1


# --- a provider that fails -----------------------------------------------------------------------
def test_a_provider_that_raises_leaves_the_payment_unknown(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    provider = ScriptedProvider(pay=RuntimeError("connection reset"))
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    unknown = pay(service, ana, "40", "123456", biller="test-bills")
    assert unknown.state is PaymentState.UNKNOWN
    assert unknown.reason == "RuntimeError: connection reset"
    assert unknown.provider_ref is None
    assert balances(service, ana) == ("100.00", "60.00")

    # Asked about it, the provider still fails: unknown, the money still held.
    provider.status_answer = ConnectionError("refused")
    assert service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 1)
    assert balances(service, ana) == ("100.00", "60.00")
    # Then it answers.
    provider.status_answer = None
    clock.advance(SECOND)
    assert service.reconcile_payments(actor=admin) == Reconciliation(1, 0, 0)
    assert provider.asked == [unknown.id, unknown.id]
    assert provider.paid == [unknown.id]  # never asked to pay twice
    assert balances(service, ana) == ("60.00", "60.00")


def test_a_biller_whose_provider_is_not_loaded_here_stays_unknown_at_reconcile(
    wallet: Wallet, db_url: str, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    add_test_biller(service, admin, ScriptedProvider(pay=ProviderAnswer(ProviderOutcome.UNKNOWN)))
    ana = customer(service, "100")
    unknown = pay(service, ana, "40", "123456", biller="test-bills")
    assert unknown.state is PaymentState.UNKNOWN
    with open_wallet(db_url, clock) as other:  # a process without the test provider
        assert "test" not in other.service.providers
        assert other.service.reconcile_payments(actor=admin) == Reconciliation(0, 0, 1)
    assert balances(service, ana) == ("100.00", "60.00")


# --- refusals ------------------------------------------------------------------------------------
def test_insufficient_funds_records_nothing(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    provider = ScriptedProvider()
    add_test_biller(service, admin, provider)
    ana = customer(service, "10")
    payment_key = key()
    with pytest.raises(InsufficientFunds):
        pay(service, ana, "10.01", "123456", biller="test-bills", idempotency_key=payment_key)
    assert service.list_payments(ana) == []
    assert count(wallet, "payments") == 0
    assert provider.paid == []
    assert balances(service, ana) == ("10.00", "10.00")
    # The key keeps the refusal: topped up, the same request is refused the same way (and the
    # provider is not asked); under a new key it goes through.
    service.topup(ana, amount=usd(service, "5"), source="sandbox", idempotency_key=key())
    with pytest.raises(InsufficientFunds, match=r"needs 10\.01 USD"):
        pay(service, ana, "10.01", "123456", biller="test-bills", idempotency_key=payment_key)
    assert provider.paid == []
    paid = pay(service, ana, "10.01", "123456", biller="test-bills", idempotency_key=key())
    assert paid.state is PaymentState.SUCCEEDED
    assert balances(service, ana) == ("4.99", "4.99")


def test_money_held_by_a_payment_cannot_be_spent_twice(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    pay(service, ana, "70", water("9994"))
    with pytest.raises(InsufficientFunds):
        pay(service, ana, "31")
    with pytest.raises(InsufficientFunds):
        service.transfer(
            ana, to_phone=register(service).phone, amount=usd(service, "31"), note=None,
            idempotency_key=key(),
        )  # fmt: skip
    assert balances(service, ana) == ("100.00", "30.00")


def test_a_frozen_wallet_cannot_pay(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    provider = ScriptedProvider()
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    with pytest.raises(WalletFrozen):
        pay(service, ana, "10", "123456", biller="test-bills")
    assert count(wallet, "payments") == 0
    assert provider.paid == []
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.ACTIVE)
    assert pay(service, ana, "10", "123456", biller="test-bills").state is PaymentState.SUCCEEDED


def test_a_frozen_wallet_still_gets_an_approval_but_not_a_release(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    late_approve = pay(service, ana, "10", water("9992"))
    late_decline = pay(service, ana, "20", water("9993"))
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    approved = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="CB")
    assert service.settle_payment(payment_id=late_approve.id, answer=approved) is not None
    declined = ProviderAnswer(ProviderOutcome.DECLINED, reason="no")
    with pytest.raises(WalletFrozen):  # the money cannot go back into a frozen wallet yet
        service.settle_payment(payment_id=late_decline.id, answer=declined)
    assert state_of(service, ana, late_decline.id).state is PaymentState.UNKNOWN
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.ACTIVE)
    assert service.settle_payment(payment_id=late_decline.id, answer=declined) is not None
    assert balances(service, ana) == ("90.00", "90.00")


def test_a_wallet_with_money_held_for_a_payment_cannot_be_closed(
    wallet: Wallet, admin: Principal
) -> None:
    """Closed, it could never take back the hold of a payment the provider then declines: the
    money would stay in the holds account for good."""
    from mwallet.core.errors import WalletNotEmpty

    service = wallet.service
    ana = customer(service, "100")
    bruno = customer(service, "0", name="Bruno Sitoe")
    waiting = pay(service, ana, "10", water("9993"))  # unknown; the provider will decline it
    service.transfer(ana, to_phone=bruno.phone, amount=usd(service, "90"), note=None,
                     idempotency_key=key())  # fmt: skip
    assert balances(service, ana) == ("10.00", "0.00")
    with pytest.raises(WalletNotEmpty, match="held"):
        service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.CLOSED)
    declined = ProviderAnswer(ProviderOutcome.DECLINED, reason="no")
    assert service.settle_payment(payment_id=waiting.id, answer=declined) is not None
    assert balances(service, ana) == ("10.00", "10.00")


def test_a_frozen_wallet_does_not_stop_the_reconciliation_of_others(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "100", name="Bruno Sitoe")
    stuck = pay(service, ana, "10", water("9993"))  # the provider will decline it
    clock.advance(SECOND)
    other = pay(service, bruno, "20", water("9992"))  # the provider will approve it
    service.set_wallet_status(actor=admin, phone=ana.phone, status=AccountStatus.FROZEN)
    clock.advance(SECOND)
    try:
        counted = service.reconcile_payments(actor=admin)
    finally:
        assert state_of(service, ana, stuck.id).state is PaymentState.UNKNOWN
    assert counted.succeeded == 1
    assert state_of(service, bruno, other.id).state is PaymentState.SUCCEEDED


def test_a_disabled_biller_is_not_found_until_enabled(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    ana = customer(service, "100")
    service.set_biller_active(actor=admin, biller_id="AGUAS-MAPUTO", active=False)
    assert bill_billers(service, ana) == ["edm-credelec", "net-fibra", "tvcabo"]
    with pytest.raises(BillerNotFound, match="mwallet billers"):
        pay(service, ana, "10")
    assert count(wallet, "payments") == 0
    service.set_biller_active(actor=admin, biller_id="aguas-maputo", active=True)
    assert pay(service, ana, "10").state is PaymentState.SUCCEEDED
    with pytest.raises(BillerNotFound):
        pay(service, ana, "10", biller="no-such-biller")
    with pytest.raises(BillerNotFound):
        service.set_biller_active(actor=admin, biller_id="no-such-biller", active=False)
    actions = [one.action for one in service.audit_log(actor=admin, limit=100)]
    assert actions.count("biller.disabled") == 1
    assert actions.count("biller.enabled") == 1


def test_a_replay_after_the_biller_was_disabled_returns_the_payment(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    payment_key = key()
    paid = pay(service, ana, "10", idempotency_key=payment_key)
    service.set_biller_active(actor=admin, biller_id="aguas-maputo", active=False)
    assert pay(service, ana, "10", idempotency_key=payment_key) == paid


@pytest.mark.parametrize(
    ("amount", "reference", "biller", "error"),
    [
        ("0.99", water(), "aguas-maputo", InvalidInput),  # below the minimum
        ("5000.01", water(), "aguas-maputo", InvalidInput),  # above the maximum
        ("9.99", power(), "edm-credelec", InvalidInput),
        ("0", water(), "aguas-maputo", InvalidAmount),
        ("10", "12345675", "aguas-maputo", InvalidInput),  # a check-digit typo
        ("10", "1234567", "aguas-maputo", InvalidInput),
        ("10", "", "aguas-maputo", InvalidInput),
        ("10", "MZ1234567800", "net-fibra", InvalidInput),
    ],
)
def test_bad_amounts_and_references_record_nothing(
    wallet: Wallet, amount: str, reference: str, biller: str, error: type[Exception]
) -> None:
    service = wallet.service
    ana = customer(service, "10000")
    with pytest.raises(error):
        pay(service, ana, amount, reference, biller=biller)
    assert count(wallet, "payments") == 0
    assert balances(service, ana) == ("10000.00", "10000.00")


def test_the_bounds_themselves_are_payable(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "5001")
    assert pay(service, ana, "1").state is PaymentState.SUCCEEDED
    assert pay(service, ana, "5000").state is PaymentState.SUCCEEDED
    assert balances(service, ana) == ("0.00", "0.00")


def test_an_expired_withdrawals_hold_is_spendable_on_a_bill(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    service.request_withdrawal(
        ana, amount=usd(service, "60"), channel=Channel.ATM, pin="4729", idempotency_key=key()
    )
    clock.advance(timedelta(minutes=31))  # the withdrawal's code has expired; its hold is due
    paid = pay(service, ana, "80")
    assert paid.state is PaymentState.SUCCEEDED


# --- a provider's callback that overtakes its own answer -----------------------------------------
class CallbackFirst(ScriptedProvider):
    """A provider whose callback reaches the wallet before its reply to `pay_bill` does."""

    def __init__(self, service: WalletService) -> None:
        super().__init__()
        self.service = service

    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer:
        answer = ProviderAnswer(ProviderOutcome.APPROVED, provider_ref="FAST")
        self.service.settle_payment(payment_id=payment.id, answer=answer)
        self.paid.append(payment.id)
        return answer


def test_a_payment_settled_by_a_callback_first_is_returned_settled(
    wallet: Wallet, admin: Principal
) -> None:
    service = wallet.service
    provider = CallbackFirst(service)
    add_test_biller(service, admin, provider)
    ana = customer(service, "100")
    try:
        paid = pay(service, ana, "10", "123456", biller="test-bills")
    finally:
        (stored,) = service.list_payments(ana)
        assert stored.state is PaymentState.SUCCEEDED
        assert balances(service, ana) == ("90.00", "90.00")
    assert paid == stored


# --- roles and the catalogue ---------------------------------------------------------------------
def test_a_customer_cannot_manage_billers_or_reconcile(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    with pytest.raises(PermissionDenied):
        service.add_biller(
            actor=ana, biller_id="my-biller", name="Mine", category="other",
            min_amount=usd(service, "1"), max_amount=usd(service, "10"),
        )  # fmt: skip
    with pytest.raises(PermissionDenied):
        service.set_biller_active(actor=ana, biller_id="aguas-maputo", active=False)
    with pytest.raises(PermissionDenied):
        service.reconcile_payments(actor=ana)
    # By category, then id.
    assert bill_billers(service, ana) == [
        "edm-credelec",
        "net-fibra",
        "tvcabo",
        "aguas-maputo",
    ]
    actions = [one.action for one in service.audit_log(actor=OPERATOR, limit=100)]
    assert not any(action.startswith("biller.") for action in actions)


def test_an_admin_adds_a_biller_with_its_payable_account(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    accounts = service.verify_ledger(actor=admin).accounts
    added = service.add_biller(
        actor=admin, biller_id=" Aguas-Beira ", name="  Águas   da Beira ", category="WATER",
        min_amount=usd(service, "2"), max_amount=usd(service, "300"), pattern=r"B[0-9]{6}",
        check="LUHN",
    )  # fmt: skip
    assert (added.id, added.name, added.category.value, added.check.value) == (
        "aguas-beira",
        "Águas da Beira",
        "water",
        "luhn",
    )
    assert (added.min_minor, added.max_minor, added.provider, added.active) == (
        200,
        30000,
        "sandbox",
        True,
    )
    assert service.verify_ledger(actor=admin).accounts == accounts + 1
    assert payable(wallet, "aguas-beira") == 0
    ana = customer(service, "100")
    assert "aguas-beira" in [one.id for one in service.billers(ana)]
    with pytest.raises(Refused, match="already"):
        service.add_biller(
            actor=admin, biller_id="aguas-beira", name="Again", category="water",
            min_amount=usd(service, "1"), max_amount=usd(service, "10"),
        )  # fmt: skip
    with pytest.raises(Refused, match="already"):
        service.add_biller(
            actor=admin, biller_id="tvcabo", name="TV again", category="tv",
            min_amount=usd(service, "1"), max_amount=usd(service, "10"),
        )  # fmt: skip
    assert "biller.added" in [one.action for one in service.audit_log(actor=admin, limit=100)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"category": "gas"}, "unknown category 'gas'; one of water"),
        ({"check": "crc"}, "unknown check 'crc'; one of none"),
        ({"provider": "nobody"}, "no provider 'nobody'"),
        ({"name": "X"}, "2 to 80 characters"),
        ({"name": "N" * 81}, "2 to 80 characters"),
        ({"min_amount": "20", "max_amount": "10"}, "minimum is above the maximum"),
        ({"biller_id": "a"}, "biller id is 2-32"),
        ({"pattern": "[0-9"}, "not a regular expression"),
    ],
)
def test_a_bad_biller_is_refused(
    wallet: Wallet, admin: Principal, changes: dict[str, str], message: str
) -> None:
    service = wallet.service
    asked: dict[str, str] = {
        "biller_id": "new-biller", "name": "New Biller", "category": "other",
        "min_amount": "1", "max_amount": "100", "provider": "sandbox", "pattern": "[0-9]{6}",
        "check": "none",
    }  # fmt: skip
    asked.update(changes)
    before = service.billers(admin)
    with pytest.raises(InvalidInput, match=message):
        service.add_biller(
            actor=admin, biller_id=asked["biller_id"], name=asked["name"],
            category=asked["category"], min_amount=usd(service, asked["min_amount"]),
            max_amount=usd(service, asked["max_amount"]), provider=asked["provider"],
            pattern=asked["pattern"], check=asked["check"],
        )  # fmt: skip
    assert service.billers(admin) == before


def test_a_biller_in_another_currency_is_refused(wallet: Wallet, admin: Principal) -> None:
    service = wallet.service
    with pytest.raises(InvalidInput, match="keeps its books in USD"):
        service.add_biller(
            actor=admin, biller_id="euro-bills", name="Euro Bills", category="other",
            min_amount=Money(100, "EUR"), max_amount=Money(1000, "EUR"),
        )  # fmt: skip


@pytest.mark.parametrize("what", ["pattern", "provider"])
def test_a_biller_wider_than_its_columns_is_refused(
    wallet: Wallet, admin: Principal, what: str
) -> None:
    service = wallet.service
    provider = "p" * 17 if what == "provider" else "sandbox"
    service.providers[provider] = ScriptedProvider()
    pattern = "(" + "|".join(["1"] * 100) + ")[0-9]{6}" if what == "pattern" else "[0-9]{6}"
    assert len(pattern) > 200 or what == "provider"
    with pytest.raises(InvalidInput):
        service.add_biller(
            actor=admin, biller_id="wide", name="Wide", category="other",
            min_amount=usd(service, "1"), max_amount=usd(service, "10"), provider=provider,
            pattern=pattern,
        )  # fmt: skip


def test_a_long_provider_ref_is_kept_or_cut_not_a_crash(
    wallet: Wallet, admin: Principal, backend: str, request: pytest.FixtureRequest
) -> None:
    service = wallet.service
    receipt = "R" * 80
    add_test_biller(
        service, admin, ScriptedProvider(pay=ProviderAnswer(ProviderOutcome.APPROVED, receipt))
    )
    ana = customer(service, "100")
    paid = pay(service, ana, "10", "123456", biller="test-bills")
    assert paid.state is PaymentState.SUCCEEDED
    assert paid.provider_ref is not None
    assert receipt.startswith(paid.provider_ref)
    assert balances(service, ana) == ("90.00", "90.00")


# --- lists and views -----------------------------------------------------------------------------
def test_payments_are_listed_newest_first_and_each_sees_only_their_own(
    wallet: Wallet, clock: FixedClock
) -> None:
    service = wallet.service
    ana, bruno = customer(service, "100"), customer(service, "100", name="Bruno Sitoe")
    made = []
    for number in range(3):
        made.append(pay(service, ana, "1", water(n=number)))
        clock.advance(SECOND)
    theirs = pay(service, bruno, "2")
    assert [one.id for one in service.list_payments(ana)] == [one.id for one in reversed(made)]
    assert [one.id for one in service.list_payments(ana, limit=2)] == [made[2].id, made[1].id]
    assert service.list_payments(bruno) == [theirs]
    with pytest.raises(PaymentNotFound):
        service.payment(ana, payment_id=theirs.id)
    with pytest.raises(PaymentNotFound):
        service.payment(ana, payment_id="nothing")
    with pytest.raises(InvalidInput):
        service.list_payments(ana, limit=0)


# --- notices -------------------------------------------------------------------------------------
def test_the_payer_is_told_of_a_paid_and_a_declined_bill(
    wallet: Wallet, admin: Principal, clock: FixedClock
) -> None:
    service = wallet.service
    ana = customer(service, "100")
    service.relay_notifications()
    paid = pay(service, ana, "45.80", "1234 5674")
    clock.advance(SECOND)
    declined = pay(service, ana, "12", water("9991"))
    clock.advance(SECOND)
    unknown = pay(service, ana, "3", water("9992"))
    assert service.relay_notifications() == 2  # nothing yet for the unknown one
    texts = [(one.kind, one.title, one.body) for one in service.inbox(ana, limit=100)]
    assert texts[:2] == [
        (
            "bill_failed",
            "Bill not paid",
            f"Your payment of $12.00 to aguas-maputo (reference {declined.reference}) was "
            "declined; the money is back.",
        ),
        (
            "bill_paid",
            "Bill paid",
            f"Your payment of $45.80 to aguas-maputo (reference {paid.reference}) was "
            "completed successfully.",
        ),
    ]
    clock.advance(SECOND)
    service.reconcile_payments(actor=admin)
    assert service.relay_notifications() == 1
    newest = service.inbox(ana, limit=1)[0]
    assert newest.kind == "bill_paid"
    assert f"(reference {unknown.reference})" in newest.body
    assert "$3.00" in newest.body


def test_a_portuguese_reader_is_told_in_portuguese(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "100")
    service.set_notification_preferences(ana, language="pt-MZ")
    service.relay_notifications()
    declined = pay(service, ana, "12", water("9991"))
    service.relay_notifications()
    newest = service.inbox(ana, limit=1)[0]
    assert (newest.kind, newest.title) == ("bill_failed", "Conta não paga")
    assert f"(referência {declined.reference}) foi recusado; o dinheiro voltou." in newest.body


def test_every_sandbox_biller_is_payable(wallet: Wallet) -> None:
    service = wallet.service
    ana = customer(service, "1000")
    references = {
        "aguas-maputo": water(),
        "edm-credelec": power(),
        "tvcabo": "123456",
        "net-fibra": "MZ12345678" + mod97_digits("MZ12345678"),
    }
    for biller in BILLERS:
        assert pay(service, ana, "10", references[biller], biller=biller).state is (
            PaymentState.SUCCEEDED
        )
        assert payable(wallet, biller) == 1000
    assert balances(service, ana) == ("960.00", "960.00")
