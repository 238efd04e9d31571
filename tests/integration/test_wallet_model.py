"""A stateful model of the wallet: hypothesis drives the real services on both databases.

The model is a dict of balances. Random registrations, top-ups, transfers (overdrafts and
self-transfers included), freezes, replays and key reuses run against `WalletService`; after every
step the books must agree with the model and with double entry itself.

One database per backend serves every example of the run: each example registers new phones,
so examples are independent, while the global invariants (all balances sum to zero, no wallet
below zero, `verify_ledger` finds nothing) must hold over everything the run has written.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from mwallet.bootstrap import Wallet
from mwallet.core.domain.ledger import AccountStatus
from mwallet.core.domain.money import Money
from mwallet.core.domain.users import Principal
from mwallet.core.errors import (
    IdempotencyKeyReused,
    InsufficientFunds,
    SelfTransfer,
    UnknownRecipient,
    WalletError,
    WalletFrozen,
)
from tests.support import OPERATOR, PASSWORD, new_phone

# Big enough to find overdrafts and long chains, small enough for ~30 s per backend.
MODEL_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

amounts = st.integers(min_value=1, max_value=1_000_000)
notes = st.one_of(st.none(), st.sampled_from(["rent", "lunch", "  lunch  "]))
names = st.text(alphabet="abcdefghij ", min_size=1, max_size=12).filter(lambda s: s.strip())


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def spaced(phone: str) -> str:
    return f"{phone[:4]} {phone[4:7]} {phone[7:]}"


@dataclass(frozen=True)
class Person:
    principal: Principal
    name: str

    @property
    def id(self) -> str:
        return self.principal.user_id

    @property
    def phone(self) -> str:
        return self.principal.phone


@dataclass(frozen=True)
class Request:
    """A request the wallet carried out, kept to be replayed or to have its key reused."""

    kind: str  # register, topup or transfer
    person: Person
    key: str
    result_id: str
    amount: int = 0
    to_phone: str = ""
    note: str | None = None
    name: str = ""


@dataclass
class Books:
    """What the wallet should hold: balances in cents by user id, frozen wallets, events."""

    people: dict[str, Person] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)
    frozen: set[str] = field(default_factory=set)
    events: int = 0


class WalletModel(RuleBasedStateMachine):
    people = Bundle("people")

    def __init__(self, wallet: Wallet) -> None:
        super().__init__()
        self.wallet = wallet
        self.service = wallet.service
        self.model = Books()
        self.done: list[Request] = []
        self.keys = 0
        self.events_at_start = self._outbox_count()

    # --- helpers ---------------------------------------------------------------------------------
    def _key(self) -> str:
        self.keys += 1
        return f"k{self.keys}"

    def _outbox_count(self) -> int:
        with self.wallet.engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one())

    def _send(self, request: Request) -> str:
        """Send `request` to the service; the id of what it did."""
        service, who = self.service, request.person.principal
        if request.kind == "register":
            return service.register(
                phone=request.to_phone,
                display_name=request.name,
                email=None,
                password=PASSWORD,
                idempotency_key=request.key,
            ).id
        if request.kind == "topup":
            return service.topup(
                who, amount=usd(request.amount), source="sandbox", idempotency_key=request.key
            ).id
        return service.transfer(
            who,
            to_phone=request.to_phone,
            amount=usd(request.amount),
            note=request.note,
            idempotency_key=request.key,
        ).id

    # --- rules -----------------------------------------------------------------------------------
    @initialize(target=people, name=names)
    def first_person(self, name: str) -> Person:
        return self._register(name)

    @rule(target=people, name=names)
    def register(self, name: str) -> Person:
        return self._register(name)

    def _register(self, name: str) -> Person:
        phone, key = new_phone(), self._key()
        user = self.service.register(
            phone=phone, display_name=name, email=None, password=PASSWORD, idempotency_key=key
        )
        principal = self.service.login(phone=phone, password=PASSWORD).principal
        assert principal.user_id == user.id
        person = Person(principal, name)
        self.model.people[person.id] = person
        self.model.balances[person.id] = 0
        self.model.events += 1
        self.done.append(Request("register", person, key, user.id, to_phone=phone, name=name))
        return person

    @rule(who=people, amount=amounts)
    def topup(self, who: Person, amount: int) -> None:
        request = Request("topup", who, self._key(), "", amount=amount)
        if who.id in self.model.frozen:
            self._expect_refusal(request, {WalletFrozen})
            return
        result_id = self._send(request)
        self.model.balances[who.id] += amount
        self.model.events += 1
        self.done.append(replace(request, result_id=result_id))

    @rule(
        sender=people,
        recipient=people,
        share=st.sampled_from(["some", "all", "more"]),
        size=amounts,
        note=notes,
        spell_out=st.booleans(),
    )
    def transfer(
        self,
        *,
        sender: Person,
        recipient: Person,
        share: str,
        size: int,
        note: str | None,
        spell_out: bool,
    ) -> None:
        # Amounts are drawn relative to the sender's balance, so that exact and one-cent
        # overdrafts come up as often as ordinary payments.
        balance = self.model.balances[sender.id]
        amount = {"some": min(size, balance), "all": balance, "more": balance + size}[share]
        amount = amount or size
        to_phone = spaced(recipient.phone) if spell_out else recipient.phone
        request = Request("transfer", sender, self._key(), "", amount, to_phone, note)
        expected: set[type[WalletError]] = set()
        if sender == recipient:
            expected.add(SelfTransfer)
        if {sender.id, recipient.id} & self.model.frozen:
            expected.add(WalletFrozen)
        if amount > self.model.balances[sender.id]:
            expected.add(InsufficientFunds)
        if expected:
            self._expect_refusal(request, expected)
            return
        result_id = self._send(request)
        self.model.balances[sender.id] -= amount
        self.model.balances[recipient.id] += amount
        self.model.events += 1
        self.done.append(replace(request, result_id=result_id))

    @rule(sender=people, amount=amounts)
    def transfer_to_a_stranger(self, sender: Person, amount: int) -> None:
        request = Request("transfer", sender, self._key(), "", amount, new_phone())
        self._expect_refusal(request, {UnknownRecipient})

    @rule(who=people)
    def freeze_or_unfreeze(self, who: Person) -> None:
        if who.id in self.model.frozen:
            self.service.set_wallet_status(
                actor=OPERATOR, phone=who.phone, status=AccountStatus.ACTIVE
            )
            self.model.frozen.discard(who.id)
        else:
            self.service.set_wallet_status(
                actor=OPERATOR, phone=who.phone, status=AccountStatus.FROZEN
            )
            self.model.frozen.add(who.id)
        self.model.events += 1  # WalletStatusChanged

    @precondition(lambda self: self.done)
    @rule(data=st.data(), spell_out=st.booleans())
    def replay(self, data: st.DataObject, spell_out: bool) -> None:
        request = data.draw(st.sampled_from(self.done), label="request")
        if spell_out and request.to_phone:
            request = replace(request, to_phone=spaced(request.to_phone))
        # A replay answers from the record: same result, nothing moves, even if frozen since.
        assert self._send(request) == request.result_id

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def reuse_a_key(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(self.done), label="request")
        if original.kind == "register":
            changes = [replace(original, name=original.name + "x")]
        else:
            other_kind = "transfer" if original.kind == "topup" else "topup"
            changes = [
                replace(original, amount=original.amount + 1),
                replace(original, kind=other_kind, to_phone=new_phone()),
            ]
            if original.kind == "transfer":
                changes.append(replace(original, note=(original.note or "") + " again"))
                changes.append(replace(original, to_phone=new_phone()))
        different = data.draw(st.sampled_from(changes), label="different request")
        self._expect_refusal(different, {IdempotencyKeyReused})

    def _expect_refusal(self, request: Request, expected: set[type[WalletError]]) -> None:
        with pytest.raises(tuple(expected)):
            self._send(request)

    # --- invariants ------------------------------------------------------------------------------
    @invariant()
    def every_currency_sums_to_zero_and_no_wallet_is_negative(self) -> None:
        with self.wallet.engine.connect() as conn:
            totals = conn.execute(
                text("SELECT currency, SUM(balance) FROM accounts GROUP BY currency")
            ).all()
            negative = conn.execute(
                text("SELECT COUNT(*) FROM accounts WHERE kind = 'wallet' AND balance < 0")
            ).scalar_one()
        assert all(int(total) == 0 for _, total in totals), totals
        assert negative == 0

    @invariant()
    def balances_match_the_model(self) -> None:
        for person_id, expected in self.model.balances.items():
            principal = self.model.people[person_id].principal
            assert self.service.balance(principal).balance == usd(expected)

    @invariant()
    def each_change_wrote_one_event(self) -> None:
        assert self._outbox_count() - self.events_at_start == self.model.events

    @invariant()
    def the_ledger_verifies(self) -> None:
        report = self.service.verify_ledger(actor=OPERATOR)
        assert report.ok, report.problems


def test_the_wallet_behaves_like_its_model(wallet: Wallet) -> None:
    class OnThisDatabase(WalletModel):
        def __init__(self) -> None:
            super().__init__(wallet)

    run_state_machine_as_test(OnThisDatabase, settings=MODEL_SETTINGS)
