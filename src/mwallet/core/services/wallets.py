"""Use cases that read or move a customer's money: balance, top-up, transfer, history."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mwallet.core.clock import Clock
from mwallet.core.crypto import SecretBox
from mwallet.core.domain import events
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    Account,
    AccountKind,
    AccountStatus,
    EntryKind,
    JournalEntry,
    funding_account_code,
    move,
    split,
    wallet_account_code,
)
from mwallet.core.domain.money import Money, check_movable
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.tariffs import Movement
from mwallet.core.domain.transfers import (
    FUNDING_SOURCES,
    IdempotencyRecord,
    TopUp,
    Transfer,
    check_idempotency_key,
    check_note,
    request_fingerprint,
)
from mwallet.core.domain.users import Principal, normalize_phone
from mwallet.core.errors import (
    CurrencyMismatch,
    DataIntegrityError,
    InsufficientFunds,
    PermissionDenied,
    SelfTransfer,
    UnknownFundingSource,
    UnknownRecipient,
    WalletClosed,
    WalletError,
    WalletFrozen,
)
from mwallet.core.services import ledger, step_up, tariffs
from mwallet.core.services.authorization import authorize
from mwallet.core.services.idempotency import RefusalsKept
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork


@dataclass(frozen=True, slots=True)
class Balance:
    user_id: str
    phone: str
    balance: Money
    available: Money


def balance(uow: UnitOfWork, clock: Clock, *, principal: Principal) -> Balance:
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "read a balance")
    with uow.read_only():
        wallet = _wallet_of(uow, principal)
        held = uow.withdrawals.held_for(principal.user_id)
        held += uow.payments.held_for(principal.user_id)
        due = bool(uow.withdrawals.due_of_user(principal.user_id, clock.now()))
    if due:  # holds past their time go back first (rare: only then a second read)
        from mwallet.core.services import withdrawals

        withdrawals.expire_due(uow, clock, user_id=principal.user_id)
        with uow.read_only():
            wallet = _wallet_of(uow, principal)
            held = uow.withdrawals.held_for(principal.user_id)
            held += uow.payments.held_for(principal.user_id)
    # Money held for withdrawals and payments is still the user's, but not available to spend.
    total = Money(wallet.balance.minor + held, wallet.balance.currency)
    return Balance(principal.user_id, principal.phone, total, wallet.balance)


def topup(
    uow: UnitOfWork,
    clock: Clock,
    *,
    principal: Principal,
    amount: Money,
    source: str,
    idempotency_key: str,
) -> TopUp:
    """Credit the wallet from a funding source (the built-in `sandbox` for now)."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "top up")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    if source not in FUNDING_SOURCES:
        raise UnknownFundingSource(
            f"unknown funding source {source!r}; available: {', '.join(sorted(FUNDING_SOURCES))}"
        )
    fingerprint = request_fingerprint(
        "topup", source=source, amount=amount.minor, currency=amount.currency
    )
    with uow, RefusalsKept(uow, scope=principal.user_id, key=key) as kept:
        now = clock.now()
        topup_id = new_id(now)
        claim = IdempotencyRecord("topup", fingerprint, topup_id)
        if (earlier := kept.claim_or_replay(claim, now=now, load=uow.transfers.topup)) is not None:
            return earlier
        wallet_id = _wallet_id(uow, principal)
        funding_id = uow.ledger.account_id(funding_account_code(source, amount.currency))
        if funding_id is None:
            raise CurrencyMismatch(f"the {source} source pays in no {amount.currency}")
        # `post` refuses a frozen or closed wallet, or another currency, atomically.
        uow.ledger.post(
            JournalEntry(
                topup_id, EntryKind.TOPUP, now, move(amount, debit=funding_id, credit=wallet_id)
            ),
            names={wallet_id: "your wallet", funding_id: f"the {source} source"},
        )
        done = TopUp(topup_id, principal.user_id, source, amount, now)
        uow.transfers.add_topup(done)
        uow.outbox.add(
            events.topup_completed(
                new_id(now),
                topup_id=topup_id,
                user_id=principal.user_id,
                source=source,
                amount_minor=amount.minor,
                currency=amount.currency,
            ),
            now,
        )
        uow.commit()
        return done


def transfer(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    settings: InstanceSettings,
    sender: Principal,
    to_phone: str,
    amount: Money,
    note: str | None,
    idempotency_key: str,
    code: str | None = None,
    kind: EntryKind = EntryKind.TRANSFER,
) -> Transfer:
    """Move money from the sender's wallet to the wallet registered to `to_phone`.

    At or above the step-up amount, a sender with 2FA on must give a fresh code (`step_up`).
    """
    authorize(uow, clock, sender, Permission.MOVE_OWN_MONEY, "send money")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    recipient_phone = normalize_phone(to_phone, settings.region)
    memo = check_note(note)
    fingerprint = request_fingerprint(
        kind.value, to=recipient_phone, amount=amount.minor, currency=amount.currency, note=memo
    )
    guard = step_up.StepUp.needed(
        uow, clock, settings=settings, principal=sender, amount=amount, code=code
    )

    held_back = False  # the last refusal was for money withdrawals past their time still hold

    def held_by_due_withdrawals(error: WalletError) -> bool:
        """Not to be kept: the sender's withdrawals past their time are to be expired (their
        holds are the sender's money again) and the transfer tried once more."""
        nonlocal held_back
        held_back = isinstance(error, InsufficientFunds) and bool(
            uow.withdrawals.due_of_user(sender.user_id, clock.now())
        )
        return held_back

    def attempt(unless: Callable[[WalletError], bool] | None) -> Transfer:
        return _transfer(
            uow,
            clock,
            box,
            unless=unless,
            guard=guard,
            sender=sender,
            recipient_phone=recipient_phone,
            amount=amount,
            memo=memo,
            key=key,
            fingerprint=fingerprint,
            kind=kind,
        )

    def movement() -> Transfer:
        try:
            return attempt(held_by_due_withdrawals if guard is None else None)
        except InsufficientFunds:
            from mwallet.core.services import withdrawals

            # Money held for withdrawals past their time is the sender's again: return it, and
            # try once more (only then: the hot path pays nothing for it).
            if held_back and withdrawals.expire_due(uow, clock, user_id=sender.user_id):
                return attempt(None)
            raise

    return step_up.guarded(uow, guard, movement)


def _transfer(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    unless: Callable[[WalletError], bool] | None,
    guard: step_up.StepUp | None,
    sender: Principal,
    recipient_phone: str,
    amount: Money,
    memo: str | None,
    key: str,
    fingerprint: str,
    kind: EntryKind,
) -> Transfer:
    """One attempt; `unless`: which refusals not to keep under the key (`RefusalsKept`)."""
    with uow, RefusalsKept(uow, scope=sender.user_id, key=key, unless=unless) as kept:
        now = clock.now()
        if guard is not None:
            guard.refuse_if_locked(uow, now)
        transfer_id = new_id(now)
        claim = IdempotencyRecord("transfer", fingerprint, transfer_id)
        claimed = uow.idempotency.claim_later(sender.user_id, key, claim, now)
        # A customer's transfer pays the transfer tariff, on top; an agent's cash-in is free.
        # The sender's terms and the recipient are read in the claim's round trip (reads: the
        # savepoint a refusal goes back to can come after them); what the claim found counts first.
        terms_read = (
            tariffs.terms_later(uow, sender.user_id, Movement.TRANSFER, amount.currency)
            if kind is EntryKind.TRANSFER
            else None
        )
        found = uow.ledger.wallet_by_phone(recipient_phone)
        if (earlier := kept.replay_of(claimed(), claim, load=uow.transfers.transfer)) is not None:
            if guard is not None:  # the first request used its code; this one needs none
                guard.release_in(uow)
                uow.commit()
            return earlier
        if guard is not None:
            guard.check(uow, now, box)
        if recipient_phone == sender.phone:
            raise SelfTransfer("you cannot send money to yourself")
        if found is None:
            raise UnknownRecipient(f"no wallet is registered to {recipient_phone}")
        recipient_wallet = found
        recipient_id = recipient_wallet.owner_user_id
        if recipient_id is None:  # pragma: no cover - a wallet found by its owner's phone
            raise DataIntegrityError(f"the wallet of {recipient_phone} has no owner")
        _check_open(recipient_wallet, whose="the recipient's")
        _check_currency(amount, recipient_wallet)
        sender_wallet_id = _wallet_id(uow, sender)
        terms = None if terms_read is None else terms_read()
        fee = Money.zero(amount.currency) if terms is None else terms.fee(amount)
        postings = (
            split(
                amount + fee,
                debit=sender_wallet_id,
                credits=[
                    (recipient_wallet.id, amount),
                    (ledger.house_account(uow, AccountKind.FEES, fee.currency, now), fee),
                ],
            )
            if fee.minor
            else move(amount, debit=sender_wallet_id, credit=recipient_wallet.id)
        )
        # The sender's status, currency and balance are checked by `post`, atomically with the
        # debit: a check made here first could be stale by the time the money moves.
        uow.ledger.post(
            JournalEntry(transfer_id, kind, now, postings, memo),
            names={sender_wallet_id: "your wallet", recipient_wallet.id: "the recipient's wallet"},
        )
        done = Transfer(
            transfer_id,
            sender.user_id,
            sender.phone,
            recipient_id,
            recipient_phone,  # as the recipient's row has it: the wallet was found by it
            amount,
            memo,
            now,
            fee.minor,
        )
        uow.transfers.add_transfer(done)
        if terms is not None:  # after the debit, which holds the sender's row: they take turns
            tariffs.enforce_limits(uow, terms, user_id=sender.user_id, amount=amount, now=now)
        uow.outbox.add(
            events.transfer_completed(
                new_id(now),
                transfer_id=transfer_id,
                sender_user_id=sender.user_id,
                recipient_user_id=recipient_id,
                amount_minor=amount.minor,
                currency=amount.currency,
                kind=kind.value,
            ),
            now,
        )
        uow.commit()
        return done


def _wallet_of(uow: UnitOfWork, principal: Principal) -> Account:
    wallet = uow.ledger.by_code(wallet_account_code(principal.user_id))
    if wallet is None:  # pragma: no cover - registration opens the wallet with the user
        raise DataIntegrityError(f"user {principal.user_id} has no wallet")
    return wallet


def _wallet_id(uow: UnitOfWork, principal: Principal) -> int:
    wallet_id = uow.ledger.account_id(wallet_account_code(principal.user_id))
    if wallet_id is None:  # pragma: no cover - registration opens the wallet with the user
        raise DataIntegrityError(f"user {principal.user_id} has no wallet")
    return wallet_id


def _check_open(account: Account, *, whose: str) -> None:
    if account.status is AccountStatus.FROZEN:
        raise WalletFrozen(f"{whose} wallet is frozen".capitalize())
    if account.status is AccountStatus.CLOSED:
        raise WalletClosed(f"{whose} wallet is closed".capitalize())


def _check_currency(amount: Money, account: Account) -> None:
    if amount.currency != account.currency:
        raise CurrencyMismatch(
            f"the wallet keeps {account.currency}; the amount is in {amount.currency}"
        )


def cash_in(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    settings: InstanceSettings,
    agent: Principal,
    to_phone: str,
    amount: Money,
    idempotency_key: str,
    code: str | None = None,
) -> Transfer:
    """A customer handed an agent cash: the agent sends them e-money from their float."""
    authorize(uow, clock, agent, Permission.CASH_IN, "take cash in")
    with uow.read_only():
        registered = uow.terminals.by_agent(agent.user_id) is not None
    if not registered:
        raise PermissionDenied("you are not a registered agent: ask an admin to add you")
    return transfer(
        uow, clock, box, settings=settings, sender=agent, to_phone=to_phone, amount=amount,
        note="cash in", idempotency_key=idempotency_key, code=code, kind=EntryKind.CASH_IN,
    )  # fmt: skip
