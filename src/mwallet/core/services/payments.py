"""Use cases of bill payments: the billers catalogue, paying a bill, and settling what the
provider left unknown. `core.domain.payments` draws the states.

A payment is three steps, never one transaction around a network call:

1. one unit of work claims the idempotency key, records the payment `pending` and holds its money
   (wallet → holds);
2. the provider is asked (outside any transaction), with the payment's id as its idempotency key;
3. one unit of work records the answer: approved (holds → the biller's payable account and the
   fee account), declined (holds → wallet), or no usable answer (`unknown`: the money stays held).

`reconcile` asks the provider about every payment left unknown, and about pending ones whose
process stopped between steps 1 and 3, and settles each from the state it is in; a callback does
the same for one payment. A settled payment cannot be settled again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain import events
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    AccountKind,
    AccountStatus,
    EntryKind,
    JournalEntry,
    funding_account_code,
    holds_account_code,
    move,
    split,
    wallet_account_code,
)
from mwallet.core.domain.money import Money, check_movable
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.payments import (
    Biller,
    Category,
    CheckDigit,
    Payment,
    PaymentState,
    Product,
    ProviderAnswer,
    ProviderOutcome,
    carrier_of,
    check_biller_id,
    check_pattern,
    no_payment,
    payable_account_code,
)
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.tariffs import Movement
from mwallet.core.domain.transfers import (
    IdempotencyRecord,
    TopUp,
    check_idempotency_key,
    request_fingerprint,
)
from mwallet.core.domain.users import Principal, normalize_phone
from mwallet.core.errors import (
    BillerNotFound,
    DataIntegrityError,
    InvalidInput,
    PaymentNotFound,
    Refused,
    UnknownFundingSource,
    WalletClosed,
    WalletError,
    WalletFrozen,
    quoted,
)
from mwallet.core.services import ledger, step_up, tariffs, withdrawals
from mwallet.core.services.authorization import authorize
from mwallet.core.services.idempotency import RefusalsKept
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

# A pending payment untouched this long was left by a process that stopped mid-way.
STALE_PENDING = timedelta(minutes=2)


class Provider(Protocol):
    """A payment provider's port. Both calls take the payment's id as the idempotency key: asking
    twice about one payment is safe, and `pay_bill` for a payment already made is not a second
    charge. Anything that is not a clear answer comes back as ProviderOutcome.UNKNOWN."""

    def pay_bill(self, payment: Payment, biller: Biller) -> ProviderAnswer: ...

    def buy_airtime(self, payment: Payment, operator: Biller) -> ProviderAnswer:
        """Top up `payment.reference` (an E.164 number) with the operator."""
        ...

    def charge(self, payment: Payment, source: Biller) -> ProviderAnswer:
        """Take `payment.amount` from the card or account `payment.reference` (a top-up)."""
        ...

    def status(self, payment: Payment, biller: Biller) -> ProviderAnswer: ...


@dataclass(frozen=True, slots=True)
class Reconciliation:
    succeeded: int
    failed: int
    still_unknown: int


# --- the catalogue -------------------------------------------------------------------------------
def add_biller(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    providers: Mapping[str, Provider],
    biller_id: str,
    name: str,
    category: str,
    min_amount: Money,
    max_amount: Money,
    provider: str,
    pattern: str,
    check: str = "none",
) -> Biller:
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "manage billers")
    try:
        kind = Category(category.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown category {quoted(category)}; one of {', '.join(Category)}"
        ) from None
    try:
        digit = CheckDigit(check.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"unknown check {quoted(check)}; one of {', '.join(CheckDigit)}"
        ) from None
    if provider not in providers or len(provider) > 16:
        raise InvalidInput(f"no provider {quoted(provider)}: one of {', '.join(sorted(providers))}")
    label = " ".join(name.split())
    if not 2 <= len(label) <= 80:
        raise InvalidInput("a biller's name is 2 to 80 characters")
    for amount in (min_amount, max_amount):
        check_movable(amount)
        if amount.currency != settings.currency:
            raise InvalidInput(f"this wallet keeps its books in {settings.currency}")
    if min_amount.minor > max_amount.minor:
        raise InvalidInput("the minimum is above the maximum")
    biller = Biller(
        check_biller_id(biller_id), label, kind, settings.currency, min_amount.minor,
        max_amount.minor, provider, check_pattern(pattern), digit,
    )  # fmt: skip
    now = clock.now()
    with uow:
        if not uow.payments.add_biller(biller, now):
            raise Refused(f"there is already a biller {biller.id!r}")
        uow.ledger.open_account(
            code=payable_account_code(biller.id), kind=AccountKind.PAYABLE,
            currency=biller.currency, owner_user_id=None, created_at=now,
        )  # fmt: skip
        uow.audit.append(AuditEvent("biller.added", actor.user_id, biller.id), now)
        uow.commit()
    return biller


def set_biller_active(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, biller_id: str, active: bool
) -> None:
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "manage billers")
    now = clock.now()
    with uow:
        if not uow.payments.set_biller_active(biller_id.strip().lower(), active):
            raise BillerNotFound(f"no biller {quoted(biller_id)}")
        action = "biller.enabled" if active else "biller.disabled"
        uow.audit.append(AuditEvent(action, actor.user_id, biller_id.strip().lower()), now)
        uow.commit()


def billers(uow: UnitOfWork, clock: Clock, *, principal: Principal) -> Sequence[Biller]:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "see the billers")
    with uow.read_only():
        return [
            one for one in uow.payments.billers()
            if one.active and one.category is not Category.FUNDING
        ]  # fmt: skip


# --- paying --------------------------------------------------------------------------------------
def pay_bill(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    providers: Mapping[str, Provider],
    *,
    settings: InstanceSettings,
    principal: Principal,
    biller_id: str,
    reference: str,
    amount: Money,
    idempotency_key: str,
    code: str | None = None,
) -> Payment:
    """Pay a bill: hold, ask the provider, record its answer. A replayed key returns the payment
    as it is now (and asks the provider nothing)."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "pay bills")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    with uow.read_only():
        biller = uow.payments.biller(biller_id.strip().lower())
        earlier = uow.idempotency.find(principal.user_id, key)
        replayed = uow.payments.get(earlier.result_id) if earlier is not None else None
    if (
        biller is not None
        and not biller.active
        and replayed is not None
        and replayed.biller_id == biller.id
    ):
        return replayed  # a retry of a payment made before the biller was disabled
    if biller is None or not biller.active:
        raise BillerNotFound(f"no biller {quoted(biller_id)}: see mwallet billers")
    return _pay(
        uow, clock, box, providers, settings=settings, principal=principal, biller=biller,
        reference=biller.reference(reference), amount=amount, product=Product.BILL, key=key,
        code=code,
    )  # fmt: skip


def pay_airtime(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    providers: Mapping[str, Provider],
    *,
    settings: InstanceSettings,
    principal: Principal,
    phone: str | None,
    amount: Money,
    idempotency_key: str,
    code: str | None = None,
) -> Payment:
    """Buy airtime for a phone number (one's own when None): its operator from the number's
    carrier data, the amount within what the operator sells."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "buy airtime")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    e164 = normalize_phone(phone, settings.region) if phone else principal.phone
    if not e164:
        raise InvalidInput("say which number to top up: --phone")
    name = carrier_of(e164)
    with uow.read_only():
        operators = [
            one for one in uow.payments.billers()
            if one.active and one.category is Category.AIRTIME
        ]  # fmt: skip
    operator = next(
        (one for one in operators if name and one.name.casefold() == name.casefold()), None
    )
    if operator is None:
        raise InvalidInput(f"{e164}: no mobile operator here sells airtime for that number")
    return _pay(
        uow, clock, box, providers, settings=settings, principal=principal, biller=operator,
        reference=e164, amount=amount, product=Product.AIRTIME, key=key, code=code,
    )  # fmt: skip


def top_up(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    providers: Mapping[str, Provider],
    *,
    settings: InstanceSettings,
    principal: Principal,
    source: str,
    reference: str,
    amount: Money,
    idempotency_key: str,
) -> Payment:
    """Top up the wallet from a card or bank provider: credited only once the provider approved
    (a decline or a timeout credits nothing; a late approval, by reconciliation or callback,
    credits once)."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "top up")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    with uow.read_only():
        found = uow.payments.biller(source.strip().lower())
    if found is None or not found.active or found.category is not Category.FUNDING:
        with uow.read_only():
            known = ["sandbox"] + [
                one.id for one in uow.payments.billers()
                if one.active and one.category is Category.FUNDING
            ]  # fmt: skip
        raise UnknownFundingSource(
            f"unknown funding source {quoted(source)}; available: {', '.join(known)}"
        )
    return _pay(
        uow, clock, box, providers, settings=settings, principal=principal, biller=found,
        reference=found.reference(reference), amount=amount, product=Product.TOPUP, key=key,
        code=None,
    )  # fmt: skip


def _pay(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    providers: Mapping[str, Provider],
    *,
    settings: InstanceSettings,
    principal: Principal,
    biller: Biller,
    reference: str,
    amount: Money,
    product: Product,
    key: str,
    code: str | None,
) -> Payment:
    """What every payment shares: the amount within the biller's range, the money held (or, for
    a top-up, only the payment recorded), the provider asked, its answer recorded."""
    biller.check_amount(amount)
    provider = providers.get(biller.provider)
    if provider is None:  # pragma: no cover - add_biller checks the provider exists
        raise DataIntegrityError(f"{biller.id} names no known provider")
    fingerprint = request_fingerprint(
        product.value, biller=biller.id, reference=reference, amount=amount.minor,
        currency=amount.currency,
    )  # fmt: skip
    # Holds of withdrawals past their time come back first: they must not block a payment.
    withdrawals.expire_due(uow, clock, user_id=principal.user_id)
    guard = (
        None  # money coming in needs no second factor
        if product is Product.TOPUP
        else step_up.StepUp.needed(
            uow, clock, settings=settings, principal=principal, amount=amount, code=code
        )
    )
    payment, fresh = step_up.guarded(
        uow,
        guard,
        lambda: _hold(
            uow, clock, box, guard, principal=principal, biller=biller, reference=reference,
            amount=amount, product=product, key=key, fingerprint=fingerprint,
        ),
    )  # fmt: skip
    if not fresh:
        return payment
    try:
        if product is Product.AIRTIME:
            answer = provider.buy_airtime(payment, biller)
        elif product is Product.TOPUP:
            answer = provider.charge(payment, biller)
        else:
            answer = provider.pay_bill(payment, biller)
    except Exception as exc:  # noqa: BLE001 - an adapter's fault is not an answer: unknown
        answer = ProviderAnswer(ProviderOutcome.UNKNOWN, reason=f"{type(exc).__name__}: {exc}")
    done = settle(uow, clock, payment_id=payment.id, answer=answer)
    if done is not None:
        return done
    with uow.read_only():  # settled meanwhile (a callback was faster): as it is now
        return uow.payments.get(payment.id) or payment


def _hold(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    guard: step_up.StepUp | None,
    *,
    principal: Principal,
    biller: Biller,
    reference: str,
    amount: Money,
    product: Product,
    key: str,
    fingerprint: str,
) -> tuple[Payment, bool]:
    with uow, RefusalsKept(uow, scope=principal.user_id, key=key) as kept:
        now = clock.now()
        if guard is not None:
            guard.refuse_if_locked(uow, now)
        terms = tariffs.terms_of(uow, principal.user_id, Movement(product.value), amount.currency)
        payment = Payment(
            new_id(now), principal.user_id, biller.id, reference, amount, terms.fee(amount),
            PaymentState.PENDING, now, now, product=product,
        )  # fmt: skip
        claim = IdempotencyRecord(product.value, fingerprint, payment.id)
        if (earlier := kept.claim_or_replay(claim, now=now, load=uow.payments.get)) is not None:
            if guard is not None:
                guard.release_in(uow)
                uow.commit()
            return earlier, False
        if guard is not None:
            guard.check(uow, now, box)
        uow.payments.add(payment)
        wallet_id = ledger.account_id(uow, wallet_account_code(principal.user_id))
        if product is Product.TOPUP:  # money comes in: nothing to hold, but the limits count
            uow.ledger.lock(wallet_id)
            # Refused before the card is charged: a frozen or closed wallet could not be
            # credited, and the customer's money would stay with the provider.
            _check_creditable(uow, principal.user_id)
        else:
            holds_id = ledger.account_id(uow, holds_account_code(amount.currency))
            uow.ledger.post(
                JournalEntry(
                    new_id(now), EntryKind.PAYMENT_HOLD, now,
                    move(payment.held, debit=wallet_id, credit=holds_id), f"payment {payment.id}",
                    ref=payment.id,
                ),
                names={wallet_id: "your wallet"},
            )  # fmt: skip
        # After the hold (or the lock), which holds the wallet's row: the user's payments take
        # turns, and the sums see every one committed before this.
        tariffs.enforce_limits(uow, terms, user_id=principal.user_id, amount=amount, now=now)
        uow.commit()
    return payment, True


def _check_creditable(uow: UnitOfWork, user_id: str) -> None:
    wallet = uow.ledger.by_code(wallet_account_code(user_id))
    if wallet is None:  # pragma: no cover - registration opens the wallet with the user
        raise DataIntegrityError(f"user {user_id} has no wallet")
    if wallet.status is AccountStatus.FROZEN:
        raise WalletFrozen("your wallet is frozen: it cannot be topped up")
    if wallet.status is AccountStatus.CLOSED:
        raise WalletClosed("your wallet is closed: it cannot be topped up")


def settle(
    uow: UnitOfWork, clock: Clock, *, payment_id: str, answer: ProviderAnswer
) -> Payment | None:
    """Record a provider's answer for a pending or unknown payment, once; None if it was settled
    already (by a callback, a reconciliation, or the request itself)."""
    with uow:
        now = clock.now()
        found = uow.payments.get(payment_id)
        if found is None:
            raise PaymentNotFound(f"no payment {quoted(payment_id)}")
        if found.state not in (PaymentState.PENDING, PaymentState.UNKNOWN):
            if _contradicts(found, answer):
                # The books follow the first answer; the provider now says the other. Money
                # is owed one way or the other: put it where an operator looks.
                uow.audit.append(
                    AuditEvent(
                        "payment.answer_contradicted", None, found.id,
                        {"state": found.state.value, "answer": answer.outcome.value,
                         "provider_ref": answer.provider_ref, "reason": answer.reason},
                    ),
                    now,
                )  # fmt: skip
                uow.commit()
            return None
        if answer.outcome is ProviderOutcome.UNKNOWN:
            if found.state is PaymentState.UNKNOWN:
                return found
            done = uow.payments.move(
                found.id, from_state=found.state, to_state=PaymentState.UNKNOWN, at=now,
                provider_ref=answer.provider_ref, reason=answer.reason,
            )  # fmt: skip
            uow.commit()
            return done
        approved = answer.outcome is ProviderOutcome.APPROVED
        done = uow.payments.move(
            found.id, from_state=found.state,
            to_state=PaymentState.SUCCEEDED if approved else PaymentState.FAILED, at=now,
            provider_ref=answer.provider_ref, reason=None if approved else answer.reason,
        )  # fmt: skip
        if done is None:
            return None  # settled meanwhile
        if done.product is Product.TOPUP:
            _settle_topup(uow, now, done, approved=approved)
            uow.commit()
            return done
        holds_id = ledger.account_id(uow, holds_account_code(done.amount.currency))
        if approved:
            shares = [(ledger.account_id(uow, payable_account_code(done.biller_id)), done.amount)]
            if done.fee.minor:
                fees_id = ledger.house_account(uow, AccountKind.FEES, done.fee.currency, now)
                shares.append((fees_id, done.fee))
            postings = split(done.held, debit=holds_id, credits=shares)
            kind = EntryKind.PAYMENT
        else:
            wallet_id = ledger.account_id(uow, wallet_account_code(done.user_id))
            postings = move(done.held, debit=holds_id, credit=wallet_id)
            kind = EntryKind.PAYMENT_RELEASE
        uow.ledger.post(
            JournalEntry(new_id(now), kind, now, postings, f"payment {done.id}", ref=done.id)
        )
        uow.outbox.add(events.bill_settled(new_id(now), payment=done), now)
        uow.commit()
    return done


def _contradicts(settled: Payment, answer: ProviderAnswer) -> bool:
    """A definite answer that says the opposite of how the payment was settled."""
    return (settled.state, answer.outcome) in {
        (PaymentState.SUCCEEDED, ProviderOutcome.DECLINED),
        (PaymentState.FAILED, ProviderOutcome.APPROVED),
    }


def _settle_topup(uow: UnitOfWork, now: datetime, done: Payment, *, approved: bool) -> None:
    """An approved top-up credits the wallet from the source's funding account; a declined one
    moves nothing (nothing was held)."""
    if not approved:
        return
    source_id = ledger.account_id(uow, funding_account_code(done.biller_id, done.amount.currency))
    wallet_id = ledger.account_id(uow, wallet_account_code(done.user_id))
    # The card was charged the amount and the fee: the wallet gets the amount, the fees the fee.
    shares = [(wallet_id, done.amount)]
    if done.fee.minor:
        fees_id = ledger.house_account(uow, AccountKind.FEES, done.fee.currency, now)
        shares.append((fees_id, done.fee))
    # The entry's id is made now, not the payment's (made when it was asked for): an entry's id
    # is made in the millisecond of its time. Its memo names the payment.
    topup_id = new_id(now)
    uow.ledger.post(
        JournalEntry(
            topup_id, EntryKind.TOPUP, now, split(done.held, debit=source_id, credits=shares),
            f"top-up {done.id}",
        ),
        names={wallet_id: "the wallet"},
    )  # fmt: skip
    uow.transfers.add_topup(TopUp(topup_id, done.user_id, done.biller_id, done.amount, now))
    uow.outbox.add(
        events.topup_completed(
            new_id(now), topup_id=topup_id, user_id=done.user_id, source=done.biller_id,
            amount_minor=done.amount.minor, currency=done.amount.currency,
        ),
        now,
    )  # fmt: skip


def reconcile(
    uow: UnitOfWork,
    clock: Clock,
    providers: Mapping[str, Provider],
    *,
    actor: Principal,
    limit: int = 500,
) -> Reconciliation:
    """Ask the provider about payments left unknown (or pending by a stopped process) and settle
    each by its answer; what the provider still cannot say stays unknown, its money held."""
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "reconcile payments")
    with uow.read_only():
        left = uow.payments.unsettled(stale_before=clock.now() - STALE_PENDING, limit=limit)
        known = {biller.id: biller for biller in uow.payments.billers()}
    succeeded = failed = unknown = 0
    for payment in left:
        biller = known[payment.biller_id]
        try:
            answer = providers[biller.provider].status(payment, biller)
        except Exception as exc:  # noqa: BLE001 - still no answer
            answer = ProviderAnswer(ProviderOutcome.UNKNOWN, reason=f"{type(exc).__name__}")
        try:
            done = settle(uow, clock, payment_id=payment.id, answer=answer)
        except WalletError:  # e.g. a frozen wallet cannot take its money back yet
            unknown += 1
            continue
        state = done.state if done is not None else None
        succeeded += state is PaymentState.SUCCEEDED
        failed += state is PaymentState.FAILED
        unknown += state in (PaymentState.UNKNOWN, PaymentState.PENDING)
    return Reconciliation(succeeded, failed, unknown)


def of_user(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, limit: int
) -> Sequence[Payment]:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "list payments")
    check_limit(limit)
    with uow.read_only():
        return uow.payments.of_user(principal.user_id, limit=limit)


def show(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, payment_id: str
) -> tuple[Payment, Biller]:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "see a payment")
    with uow.read_only():
        found = uow.payments.get(payment_id.strip())
        if found is None or found.user_id != principal.user_id:
            raise no_payment(payment_id)
        biller = uow.payments.biller(found.biller_id)
    if biller is None:  # pragma: no cover - billers are never deleted
        raise DataIntegrityError(f"payment {found.id} names a missing biller")
    return found, biller
