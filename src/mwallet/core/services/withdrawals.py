"""Use cases of cash withdrawals: request, cancel, list, expire (the user's and the admin's side)
and redeem, dispense, complete, reverse (the terminal's side). `core.domain.withdrawals` draws
the states.

Money: `request` posts wallet → holds; `complete` posts holds → the ATM's cash account or the
agent's wallet; `cancel`, `expire`, a blocking wrong PIN and `reverse` post holds → wallet. Each
posting shares its unit of work with the conditional state change it belongs to, so a state is
never reached without its money having moved, and the money never moves twice.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mwallet.core import withdrawal_qr
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
    cash_account_code,
    move,
    split,
    wallet_account_code,
)
from mwallet.core.domain.money import Money, check_movable, currency_exponent
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission
from mwallet.core.domain.terminals import Terminal
from mwallet.core.domain.transfers import (
    IdempotencyRecord,
    check_idempotency_key,
    request_fingerprint,
)
from mwallet.core.domain.users import Principal
from mwallet.core.domain.withdrawals import (
    AT_TERMINAL,
    MAX_PIN_ATTEMPTS,
    Channel,
    Withdrawal,
    WithdrawalPolicy,
    WithdrawalState,
    check_chosen_pin,
    code_digest,
    dispense_plan,
    new_code,
    new_pin,
    no_withdrawal,
    nonce_digest,
    parse_code,
    parse_pin,
    pin_digest,
    tariff_of,
)
from mwallet.core.errors import (
    CannotDispense,
    ConcurrencyConflict,
    CurrencyMismatch,
    DataIntegrityError,
    InvalidAmount,
    InvalidInput,
    OutOfCash,
    TerminalLocked,
    UnknownWithdrawalCode,
    WalletClosed,
    WalletError,
    WalletFrozen,
    WithdrawalExpired,
    WithdrawalNotFound,
    WithdrawalNotPending,
    WrongPin,
    quoted,
)
from mwallet.core.services import instance_secrets, ledger, step_up, tariffs
from mwallet.core.services.authorization import authorize
from mwallet.core.services.idempotency import RefusalsKept
from mwallet.core.services.terminals import station_of
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

_CODE_DRAWS = 5


@dataclass(frozen=True, slots=True)
class IssuedWithdrawal:
    """What the user is shown once. A replayed request gets the withdrawal without its secrets
    (they exist only as hashes): cancel it and ask again if they were lost."""

    withdrawal: Withdrawal
    code: str | None
    pin: str | None
    qr_payload: str | None


@dataclass(frozen=True, slots=True)
class Redemption:
    """An authorized withdrawal at a terminal, and the notes an ATM will dispense."""

    withdrawal: Withdrawal
    customer_name: str
    notes: dict[int, int] | None


def policy_of(settings: InstanceSettings) -> WithdrawalPolicy:
    """The withdrawal policy in force: what an admin set, or the currency's defaults."""
    return settings.withdrawal_policy or WithdrawalPolicy.default_for(
        currency_exponent(settings.currency)
    )


def current_policy(uow: UnitOfWork) -> WithdrawalPolicy:
    """The policy as stored now (another process may have changed it since this one started)."""
    settings = uow.instance.get()
    if settings is None:  # pragma: no cover - every use case runs on an initialised instance
        raise DataIntegrityError("this wallet has no settings: run mwallet init")
    return policy_of(settings)


def set_policy(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    min_amount: Money | None = None,
    max_amount: Money | None = None,
    lifetime: timedelta | None = None,
) -> WithdrawalPolicy:
    """Change some of the withdrawal policy (what is not given stays); the policy afterwards.
    It applies to withdrawals requested from then on, in every process."""
    authorize(uow, clock, actor, Permission.MANAGE_SECURITY, "set withdrawal limits")
    if lifetime is not None and lifetime % timedelta(seconds=1):
        raise InvalidInput("a code's lifetime is a whole number of seconds")
    now = clock.now()
    with uow:
        settings = uow.instance.get()
        if settings is None:  # pragma: no cover - see current_policy
            raise DataIntegrityError("this wallet has no settings: run mwallet init")
        for given in (min_amount, max_amount):
            if given is not None and given.currency != settings.currency:
                raise CurrencyMismatch(f"this wallet keeps its books in {settings.currency}")
        current = policy_of(settings)

        def minor(given: Money | None, kept: int) -> int:
            return kept if given is None else given.minor

        changed = WithdrawalPolicy(
            min_minor=minor(min_amount, current.min_minor),
            max_minor=minor(max_amount, current.max_minor),
            lifetime=current.lifetime if lifetime is None else lifetime,
        ).checked()
        uow.instance.set_withdrawal_policy(changed)
        uow.audit.append(
            AuditEvent(
                "limits.withdrawals_set", actor.user_id, None,
                {
                    "min": changed.min_minor, "max": changed.max_minor,
                    "lifetime_s": int(changed.lifetime.total_seconds()),
                },
            ),
            now,
        )  # fmt: skip
        uow.commit()
    return changed


# --- the user's side -----------------------------------------------------------------------------
def request(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    settings: InstanceSettings,
    principal: Principal,
    amount: Money,
    channel: Channel,
    pin: str | None,
    idempotency_key: str,
    code: str | None = None,
) -> IssuedWithdrawal:
    """Hold `amount` and issue a code, a PIN and a signed QR payload to redeem it with."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "withdraw cash")
    key = check_idempotency_key(idempotency_key)
    check_movable(amount)
    if amount.currency != settings.currency:
        raise CurrencyMismatch(f"this wallet keeps its books in {settings.currency}")
    chosen = check_chosen_pin(pin) if pin is not None else new_pin()
    fingerprint = request_fingerprint(
        "withdrawal", amount=amount.minor, currency=amount.currency, channel=channel.value
    )
    # Holds of withdrawals past their time come back first: they neither block nor count.
    expire_due(uow, clock, user_id=principal.user_id)
    guard = step_up.StepUp.needed(
        uow, clock, settings=settings, principal=principal, amount=amount, code=code
    )
    return step_up.guarded(
        uow,
        guard,
        lambda: _request(
            uow, clock, box, guard=guard, principal=principal, amount=amount, channel=channel,
            pin=chosen, key=key, fingerprint=fingerprint,
        ),
    )  # fmt: skip


def _request(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    guard: step_up.StepUp | None,
    principal: Principal,
    amount: Money,
    channel: Channel,
    pin: str,
    key: str,
    fingerprint: str,
) -> IssuedWithdrawal:
    with uow, RefusalsKept(uow, scope=principal.user_id, key=key) as kept:
        now = clock.now()
        if guard is not None:
            guard.refuse_if_locked(uow, now)
        policy = current_policy(uow)
        terms = tariffs.terms_of(uow, principal.user_id, tariff_of(channel), amount.currency)
        withdrawal = Withdrawal(
            id=new_id(now),
            user_id=principal.user_id,
            amount=amount,
            channel=channel,
            state=WithdrawalState.PENDING,
            created_at=now,
            expires_at=now + policy.lifetime,
            pin_attempts=0,
            terminal_id=None,
            updated_at=now,
            fee=terms.fee(amount),
        )
        claim = IdempotencyRecord("withdrawal", fingerprint, withdrawal.id)
        if (earlier := kept.claim_or_replay(claim, now=now, load=uow.withdrawals.get)) is not None:
            if guard is not None:
                guard.release_in(uow)
                uow.commit()
            return IssuedWithdrawal(earlier, None, None, None)
        if not policy.min_minor <= amount.minor <= policy.max_minor:
            low, high = (
                Money(policy.min_minor, amount.currency),
                Money(policy.max_minor, amount.currency),
            )
            raise InvalidAmount(f"a withdrawal is between {low.format()} and {high.format()}")
        if guard is not None:
            guard.check(uow, now, box)
        pepper = instance_secrets.pepper(uow, now, box)
        qr_kid, qr_private, _ = instance_secrets.qr_key(uow, now, box)
        nonce = secrets.token_urlsafe(12)
        code = _store(uow, withdrawal, pepper, pin, nonce)
        wallet_id = ledger.account_id(uow, wallet_account_code(principal.user_id))
        holds_id = ledger.house_account(uow, AccountKind.HOLD, amount.currency, now)
        # The hold first: it locks the wallet's row, so concurrent requests of this user take
        # turns and each day's and month's total below sees the ones committed before it.
        uow.ledger.post(
            JournalEntry(
                new_id(now),
                EntryKind.HOLD,
                now,
                move(withdrawal.held, debit=wallet_id, credit=holds_id),
                f"withdrawal {withdrawal.id}",
                ref=withdrawal.id,
            ),
            names={wallet_id: "your wallet"},
        )
        tariffs.enforce_limits(uow, terms, user_id=principal.user_id, amount=amount, now=now)
        uow.outbox.add(
            events.withdrawal_changed(
                new_id(now), withdrawal=withdrawal, state=WithdrawalState.PENDING
            ),
            now,
        )
        uow.commit()
    payload = withdrawal_qr.sign(
        withdrawal_qr.QrClaims(withdrawal.id, amount, withdrawal.expires_at, nonce, qr_kid),
        private_key=qr_private,
    )
    return IssuedWithdrawal(withdrawal, code, pin, payload)


def _store(uow: UnitOfWork, withdrawal: Withdrawal, pepper: bytes, pin: str, nonce: str) -> str:
    for _ in range(_CODE_DRAWS):  # 10^10 codes: a clash with a stored one is all but impossible
        code = new_code()
        if uow.withdrawals.add(
            withdrawal,
            code_digest=code_digest(pepper, code),
            pin_digest=pin_digest(pepper, withdrawal.id, pin),
            nonce_digest=nonce_digest(pepper, nonce),
        ):
            return code
    raise ConcurrencyConflict("could not draw a free withdrawal code")  # pragma: no cover


def cancel(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, withdrawal_id: str
) -> Withdrawal:
    """The user takes a pending withdrawal back; its hold returns to the wallet."""
    authorize(uow, clock, principal, Permission.MOVE_OWN_MONEY, "cancel a withdrawal")
    with uow:
        now = clock.now()
        found = uow.withdrawals.get(withdrawal_id.strip())
        if found is None or found.user_id != principal.user_id:
            raise no_withdrawal(withdrawal_id)
        if found.expired_at(now):
            ended = _end(uow, found, WithdrawalState.EXPIRED, now)
            uow.commit()
            return ended
        if found.state is not WithdrawalState.PENDING:
            raise WithdrawalNotPending(
                f"the withdrawal is {found.state.value}: it cannot be cancelled"
            )
        ended = _end(uow, found, WithdrawalState.CANCELLED, now)
        uow.commit()
        return ended


def of_user(
    uow: UnitOfWork, clock: Clock, *, principal: Principal, limit: int
) -> Sequence[Withdrawal]:
    """The user's withdrawals, newest first; those past their time are expired on the way."""
    authorize(uow, clock, principal, Permission.USE_OWN_WALLET, "list withdrawals")
    check_limit(limit)
    now = clock.now()
    with uow.read_only():
        found = uow.withdrawals.of_user(principal.user_id, limit=limit)
    if any(one.expired_at(now) for one in found):
        expire_due(uow, clock, user_id=principal.user_id)
        with uow.read_only():
            found = uow.withdrawals.of_user(principal.user_id, limit=limit)
    return found


def expire_due(
    uow: UnitOfWork, clock: Clock, *, user_id: str | None = None, batch: int = 200
) -> int:
    """Expire pending withdrawals past their time (all, or one user's) and return their holds;
    how many were expired.

    Each in a unit of work of its own: one whose hold cannot go back now (its wallet is frozen)
    stays pending, is stepped over, and is tried again by a later sweep.
    """
    now = clock.now()
    done = 0
    after: tuple[datetime, str] | None = None
    while True:
        with uow.read_only():
            if user_id is not None:
                due = uow.withdrawals.due_of_user(user_id, now)
            else:
                due = uow.withdrawals.due_to_expire(now, limit=batch, after=after)
        for one in due:
            try:
                with uow:
                    _end(uow, one, WithdrawalState.EXPIRED, now, quiet=True)
                    uow.commit()
                done += 1
            except (WalletFrozen, WalletClosed):
                continue
        if user_id is not None or len(due) < batch:
            return done
        after = (due[-1].expires_at, due[-1].id)


def expire_all(uow: UnitOfWork, clock: Clock, *, actor: Principal) -> int:
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "expire withdrawals")
    return expire_due(uow, clock)


# --- the terminal's side -------------------------------------------------------------------------
def redeem(
    uow: UnitOfWork,
    clock: Clock,
    box: SecretBox,
    *,
    terminal: Principal,
    code: str | None = None,
    qr_payload: str | None = None,
    pin: str,
) -> Redemption:
    """Check a code (or a QR payload) and PIN at a terminal and authorize the withdrawal.

    An unknown code counts against the terminal (five in ten minutes lock it for 15); a wrong
    PIN against the withdrawal (the third blocks it and returns the hold). An ATM that cannot
    make the amount from its cassettes refuses before anything is authorized.
    """
    authorize(uow, clock, terminal, Permission.REDEEM_WITHDRAWALS, "pay out withdrawals")
    typed_pin = parse_pin(pin)
    typed_code = parse_code(code) if code is not None else None
    claims = None
    if typed_code is None:
        if qr_payload is None:
            raise InvalidInput("give the withdrawal's code or its QR payload")  # pragma: no cover
        claims = _verified_qr(uow, clock, box, qr_payload)
    with uow:
        now = clock.now()
        station = station_of(uow, terminal, lock=True)
        if station.locked_at(now):
            raise TerminalLocked("this terminal is locked after too many unknown codes: wait")
        if station.kind is Channel.AGENT:
            _check_agent_payable(uow, station)
        pepper = instance_secrets.pepper(uow, now, box)
        found = _find(uow, pepper, typed_code, claims)
        outcome = _refusal(uow, pepper, found, station=station, pin=typed_pin, now=now)
        if outcome is not None:
            uow.commit()  # the counts and any returned hold stay; the request is refused
            raise outcome
        assert found is not None
        notes = None
        if station.kind is Channel.ATM:
            loaded = uow.terminals.cassettes(station.id)
            if not any(loaded.values()):
                raise OutOfCash("this ATM is out of cash: try another one")
            notes = dispense_plan(found.amount.minor, loaded)
            if notes is None:
                raise CannotDispense(
                    f"this ATM cannot pay {found.amount.format()} with the notes it holds"
                )
        if not uow.withdrawals.move(
            found.id,
            from_state=WithdrawalState.PENDING,
            to_state=WithdrawalState.AUTHORIZED,
            at=now,
            terminal_id=station.id,
            notes=notes,
        ):
            raise WithdrawalNotPending("this withdrawal is already being paid out elsewhere")
        owner = uow.users.by_id(found.user_id)
        uow.audit.append(
            AuditEvent(
                "withdrawal.authorized", terminal.user_id, found.id, {"terminal": station.id}
            ),
            now,
        )
        uow.commit()
    authorized = _with_state(found, WithdrawalState.AUTHORIZED, now, station.id)
    return Redemption(authorized, _masked(owner.display_name if owner else "?"), notes)


def dispense(
    uow: UnitOfWork, clock: Clock, *, terminal: Principal, withdrawal_id: str
) -> Withdrawal:
    """An ATM is about to present the notes, or an agent says they handed the cash over: from
    now on the hold goes back only if the ATM's dispenser says it presented none
    (`reverse(..., none_presented=True)`), and a terminal that stops (or fails) before
    `complete` completes it when it starts again."""
    authorize(uow, clock, terminal, Permission.REDEEM_WITHDRAWALS, "pay out withdrawals")
    with uow:
        now = clock.now()
        station, found = _authorized_here(uow, terminal, withdrawal_id)
        if found.state is not WithdrawalState.AUTHORIZED:
            raise WithdrawalNotPending(_not_pending(found))
        if not uow.withdrawals.move(
            found.id, from_state=WithdrawalState.AUTHORIZED,
            to_state=WithdrawalState.DISPENSING, at=now,
        ):  # fmt: skip
            raise WithdrawalNotPending("this withdrawal was settled meanwhile")
        # An ATM's notes leave the cassettes now, before they are presented: if they are no
        # longer there (another payout took them), the refusal comes while nothing is out.
        if station.kind is Channel.ATM and not _take_notes(uow, station, found):
            raise CannotDispense("this ATM no longer holds the notes of this withdrawal")
        uow.audit.append(AuditEvent("withdrawal.dispensing", terminal.user_id, found.id), now)
        uow.commit()
    return _with_state(found, WithdrawalState.DISPENSING, now, station.id)


def _notes_of(uow: UnitOfWork, found: Withdrawal) -> dict[int, int]:
    """The notes the ATM was told to dispense at authorization, whatever was loaded since."""
    notes = uow.withdrawals.notes_of(found.id)
    if notes is None:  # pragma: no cover - every ATM authorization records its notes
        raise DataIntegrityError(f"withdrawal {found.id} has no dispense plan")
    return notes


def _take_notes(uow: UnitOfWork, station: Terminal, found: Withdrawal) -> bool:
    """Take a withdrawal's notes out of the ATM's cassettes; False if they are not all there
    (the unit of work must then roll back)."""
    return all(
        uow.terminals.take(station.id, denomination, count)
        for denomination, count in _notes_of(uow, found).items()
    )


def complete(
    uow: UnitOfWork, clock: Clock, *, terminal: Principal, withdrawal_id: str
) -> Withdrawal:
    """The cash was handed over: pay the hold out to the terminal and take the notes."""
    authorize(uow, clock, terminal, Permission.REDEEM_WITHDRAWALS, "pay out withdrawals")
    with uow:
        now = clock.now()
        station, found = _authorized_here(uow, terminal, withdrawal_id)
        done = _capture(uow, station, found, now)
        uow.commit()
    return done


def _capture(uow: UnitOfWork, station: Terminal, found: Withdrawal, now: datetime) -> Withdrawal:
    """Pay an authorized or dispensing withdrawal's hold out to the terminal (and the fee to the
    fees account), take an ATM's notes from its cassettes if `dispense` did not, and mark it
    completed."""
    if station.kind is Channel.ATM:
        # A dispensing withdrawal's notes are out already (`dispense` took them).
        authorized = found.state is WithdrawalState.AUTHORIZED
        if authorized and not _take_notes(uow, station, found):
            raise ConcurrencyConflict("the cassettes changed meanwhile")
        payee = ledger.account_id(uow, cash_account_code(station.id))
    else:
        assert station.agent_user_id is not None
        payee = ledger.account_id(uow, wallet_account_code(station.agent_user_id))
    if not uow.withdrawals.move(
        found.id,
        from_state=found.state,
        to_state=WithdrawalState.COMPLETED,
        at=now,
    ):
        raise WithdrawalNotPending("this withdrawal was settled meanwhile")
    holds_id = ledger.house_account(uow, AccountKind.HOLD, found.amount.currency, now)
    shares = [(payee, found.amount)]
    if found.fee.minor:
        fees_id = ledger.house_account(uow, AccountKind.FEES, found.fee.currency, now)
        shares.append((fees_id, found.fee))
    uow.ledger.post(
        JournalEntry(
            new_id(now),
            EntryKind.CAPTURE,
            now,
            split(found.held, debit=holds_id, credits=shares),
            f"withdrawal {found.id}",
            ref=found.id,
        ),
        names={payee: "the agent's wallet"},
    )
    done = _with_state(found, WithdrawalState.COMPLETED, now, station.id)
    uow.outbox.add(events.withdrawal_changed(new_id(now), withdrawal=done, state=done.state), now)
    return done


def reverse(
    uow: UnitOfWork,
    clock: Clock,
    *,
    terminal: Principal,
    withdrawal_id: str,
    none_presented: bool = False,
) -> Withdrawal:
    """The cash could not be handed over: return the hold to the user's wallet. A withdrawal an
    ATM began dispensing goes back only on its dispenser's word that it presented no note
    (`none_presented`): a cancel or a closing screen cannot know that."""
    authorize(uow, clock, terminal, Permission.REDEEM_WITHDRAWALS, "pay out withdrawals")
    if none_presented:
        _undispense(uow, clock, terminal, withdrawal_id)
    with uow:
        now = clock.now()
        _, found = _authorized_here(uow, terminal, withdrawal_id)
        if found.state is WithdrawalState.DISPENSING:
            raise WithdrawalNotPending(
                "the notes of this withdrawal may have been dispensed: it cannot be reversed"
            )
        ended = _end(
            uow, found, WithdrawalState.REVERSED, now, from_state=WithdrawalState.AUTHORIZED
        )
        uow.audit.append(AuditEvent("withdrawal.reversed", terminal.user_id, found.id), now)
        uow.commit()
    return ended


def _undispense(uow: UnitOfWork, clock: Clock, terminal: Principal, withdrawal_id: str) -> None:
    """An ATM's dispenser presented none of a dispensing withdrawal's notes: put them back in the
    cassettes and the withdrawal back to authorized (never paid out), in a unit of work of its
    own. Its hold then goes back as any authorized one's; if the wallet cannot take it yet
    (frozen), it stays authorized, held, for a later start, and is never completed."""
    with uow:
        now = clock.now()
        station, found = _authorized_here(uow, terminal, withdrawal_id)
        if found.state is not WithdrawalState.DISPENSING:
            return  # authorized: nothing left the cassettes
        if station.kind is not Channel.ATM:  # an agent's "dispensing" is the cash handed over
            raise WithdrawalNotPending(
                "the cash of this withdrawal was handed over: it cannot be reversed"
            )
        if not uow.withdrawals.move(
            found.id, from_state=WithdrawalState.DISPENSING,
            to_state=WithdrawalState.AUTHORIZED, at=now,
        ):  # fmt: skip
            raise WithdrawalNotPending("this withdrawal was settled meanwhile")
        for denomination, count in _notes_of(uow, found).items():
            uow.terminals.load(station.id, denomination, count)
        uow.audit.append(AuditEvent("withdrawal.not_dispensed", terminal.user_id, found.id), now)
        uow.commit()


def reverse_leftovers(uow: UnitOfWork, clock: Clock, *, terminal: Principal) -> list[Withdrawal]:
    """Withdrawals this terminal authorized and never settled (it stopped between the PIN and the
    cash): a terminal calls this as it starts, before any customer, and gives their money back;
    the reversed ones are returned.

    An ATM marks a withdrawal `dispensing` just before presenting its notes (an agent, once
    they handed the cash over), so one still `authorized` was never paid out: it is reversed.
    One left `dispensing` may have been taken: it is completed (audited as such), never
    reversed, since reversing a paid-out withdrawal would pay the customer twice. Each is
    settled once; another terminal cannot touch them.
    """
    authorize(uow, clock, terminal, Permission.REDEEM_WITHDRAWALS, "pay out withdrawals")
    now = clock.now()
    with uow.read_only():
        station = station_of(uow, terminal)
        left = uow.withdrawals.left_open_at(station.id)
    ended: list[Withdrawal] = []
    for found in left:  # each on its own: one that cannot go back now does not hold the rest
        if found.state is WithdrawalState.DISPENSING:
            _complete_in_doubt(uow, station, found, now, actor=terminal.user_id)
            continue
        try:
            with uow:
                done = _end(
                    uow, found, WithdrawalState.REVERSED, now,
                    from_state=WithdrawalState.AUTHORIZED, quiet=True,
                )  # fmt: skip
                if done.state is not WithdrawalState.REVERSED:
                    continue  # settled meanwhile (completed by this terminal): nothing to give
                uow.audit.append(
                    AuditEvent(
                        "withdrawal.reversed", terminal.user_id, found.id, {"left_over": True}
                    ),
                    now,
                )
                uow.commit()
            ended.append(done)
        except (WalletFrozen, WalletClosed):
            continue  # stays authorized, its money held, until the wallet can take it back
    return ended


def _complete_in_doubt(
    uow: UnitOfWork, station: Terminal, found: Withdrawal, now: datetime, *, actor: str
) -> None:
    try:
        with uow:
            _capture(uow, station, found, now)
            uow.audit.append(
                AuditEvent("withdrawal.completed", actor, found.id, {"in_doubt": True}), now
            )
            uow.commit()
    except WithdrawalNotPending:
        pass  # settled meanwhile (completed or reversed by this terminal): nothing to do
    except (WalletFrozen, WalletClosed):
        pass  # an agent's wallet cannot be paid now: it stays held until a later start


def check_qr(
    uow: UnitOfWork, clock: Clock, box: SecretBox, *, payload: str
) -> withdrawal_qr.QrClaims:
    """What a terminal checks offline: the payload is ours, unaltered, and not expired."""
    kid, public = qr_public_key(uow, clock, box)
    if withdrawal_qr.key_id_of(payload) != kid:
        raise withdrawal_qr.InvalidQr("this QR code was not issued by this wallet")
    return withdrawal_qr.verify(payload, public_key=public, now=clock.now())


def qr_public_key(uow: UnitOfWork, clock: Clock, box: SecretBox) -> tuple[str, bytes]:
    """(key id, public key) that terminals keep to check QR codes offline."""
    with uow:
        kid, _, public = instance_secrets.qr_key(uow, clock.now(), box)
        uow.commit()
    return kid, public


# --- helpers -------------------------------------------------------------------------------------
def _verified_qr(
    uow: UnitOfWork, clock: Clock, box: SecretBox, payload: str
) -> withdrawal_qr.QrClaims:
    kid, public = qr_public_key(uow, clock, box)
    if withdrawal_qr.key_id_of(payload) != kid:
        raise withdrawal_qr.InvalidQr("this QR code was not issued by this wallet")
    return withdrawal_qr.verify(payload, public_key=public)


def _find(
    uow: UnitOfWork,
    pepper: bytes,
    code: str | None,
    claims: withdrawal_qr.QrClaims | None,
) -> Withdrawal | None:
    if code is not None:
        return uow.withdrawals.by_code(code_digest(pepper, code))
    assert claims is not None
    found = uow.withdrawals.get(claims.withdrawal_id)
    if found is None:
        return None
    stored_nonce = uow.withdrawals.secrets_of(found.id)[1]
    if not hmac.compare_digest(stored_nonce, nonce_digest(pepper, claims.nonce)):
        return None
    return found


def _refusal(
    uow: UnitOfWork,
    pepper: bytes,
    found: Withdrawal | None,
    *,
    station: Terminal,
    pin: str,
    now: datetime,
) -> WalletError | None:
    """Why this code and PIN may not be paid out here, as an error to raise after committing
    what the refusal changed (counts, a returned hold); None when they may. Refusals that
    change nothing are raised at once."""
    if found is None:
        return _unknown_code(uow, station, now)
    if found.channel is not station.kind:
        raise WithdrawalNotPending(f"this withdrawal is to be paid out by an {found.channel.value}")
    if found.expired_at(now):
        _end(uow, found, WithdrawalState.EXPIRED, now)
        return WithdrawalExpired("this withdrawal has expired; its money is back in the wallet")
    if found.state is not WithdrawalState.PENDING:
        raise WithdrawalNotPending(_not_pending(found))
    if _frozen(uow, found.user_id):
        raise WalletFrozen("the customer's wallet is frozen: nothing can be paid out")
    stored = uow.withdrawals.secrets_of(found.id)[0]
    if not hmac.compare_digest(stored, pin_digest(pepper, found.id, pin)):
        return _wrong_pin(uow, found, station, now)
    return None


def _unknown_code(uow: UnitOfWork, station: Terminal, now: datetime) -> WalletError:
    counted = station.after_unknown_code(now)
    uow.terminals.save_attempts(counted)
    uow.audit.append(
        AuditEvent("terminal.unknown_code", None, station.id, {"count": counted.unknown_codes}),
        now,
    )
    if counted.locked_at(now):
        uow.audit.append(AuditEvent("terminal.locked", None, station.id), now)
        return TerminalLocked("too many unknown codes: this terminal is locked for 15 minutes")
    return UnknownWithdrawalCode("no withdrawal has that code")


def _wrong_pin(uow: UnitOfWork, found: Withdrawal, station: Terminal, now: datetime) -> WalletError:
    attempts = uow.withdrawals.count_wrong_pin(found.id, now)
    uow.audit.append(
        AuditEvent(
            "withdrawal.wrong_pin", None, found.id, {"attempts": attempts, "terminal": station.id}
        ),
        now,
    )
    if attempts >= MAX_PIN_ATTEMPTS:
        _end(uow, found, WithdrawalState.BLOCKED, now)
        uow.audit.append(AuditEvent("withdrawal.blocked", None, found.id), now)
        return WrongPin("wrong PIN: the withdrawal is blocked and its money is back in the wallet")
    left = MAX_PIN_ATTEMPTS - attempts
    return WrongPin(f"wrong PIN: {left} attempt{'s' if left > 1 else ''} left")


def _end(
    uow: UnitOfWork,
    found: Withdrawal,
    to_state: WithdrawalState,
    now: datetime,
    *,
    from_state: WithdrawalState = WithdrawalState.PENDING,
    quiet: bool = False,
) -> Withdrawal:
    """Move a withdrawal to an end that returns its hold, with the money, once."""
    if not uow.withdrawals.move(found.id, from_state=from_state, to_state=to_state, at=now):
        if quiet:
            return found
        raise WithdrawalNotPending("this withdrawal changed meanwhile: look again")
    wallet_id = ledger.account_id(uow, wallet_account_code(found.user_id))
    holds_id = ledger.house_account(uow, AccountKind.HOLD, found.amount.currency, now)
    uow.ledger.post(
        JournalEntry(
            new_id(now),
            EntryKind.RELEASE,
            now,
            move(found.held, debit=holds_id, credit=wallet_id),
            f"withdrawal {found.id} {to_state.value}",
            ref=found.id,
        ),
        names={wallet_id: "the wallet"},
    )
    ended = _with_state(found, to_state, now, found.terminal_id)
    uow.outbox.add(events.withdrawal_changed(new_id(now), withdrawal=ended, state=to_state), now)
    return ended


def _with_state(
    found: Withdrawal, state: WithdrawalState, now: datetime, terminal_id: str | None
) -> Withdrawal:
    from dataclasses import replace

    return replace(found, state=state, updated_at=now, terminal_id=terminal_id)


def _frozen(uow: UnitOfWork, user_id: str) -> bool:
    wallet = uow.ledger.by_code(wallet_account_code(user_id))
    return wallet is None or wallet.status is not AccountStatus.ACTIVE


def _check_agent_payable(uow: UnitOfWork, station: Terminal) -> None:
    """An agent hands the cash over before `complete` pays them back into their wallet: one
    their wallet would refuse must be refused now, before any cash changes hands. The wallet's
    row is held to the end of the redeem, so a closing (`ledger.set_wallet_status`, which
    refuses while a withdrawal is open at the counter) either sees this one or is seen here."""
    assert station.agent_user_id is not None
    code = wallet_account_code(station.agent_user_id)
    wallet_id = uow.ledger.account_id(code)
    if wallet_id is not None:
        uow.ledger.lock(wallet_id)
    wallet = uow.ledger.by_code(code)
    if wallet is None or wallet.status is AccountStatus.CLOSED:
        raise WalletClosed("your wallet is closed: you cannot pay out withdrawals")
    if wallet.status is AccountStatus.FROZEN:
        raise WalletFrozen("your wallet is frozen: you cannot pay out withdrawals")


def _authorized_here(
    uow: UnitOfWork, terminal: Principal, withdrawal_id: str
) -> tuple[Terminal, Withdrawal]:
    """The terminal a principal stands for, and a withdrawal it authorized (or is dispensing)
    and has not settled."""
    station = station_of(uow, terminal)
    found = uow.withdrawals.get(withdrawal_id.strip())
    if found is None or found.terminal_id not in (None, station.id):
        raise WithdrawalNotFound(f"no withdrawal {quoted(withdrawal_id)} at this terminal")
    if found.state not in AT_TERMINAL or found.terminal_id != station.id:
        raise WithdrawalNotPending(_not_pending(found))
    return station, found


def _not_pending(found: Withdrawal) -> str:
    return {
        WithdrawalState.AUTHORIZED: "this withdrawal is being paid out",
        WithdrawalState.DISPENSING: "this withdrawal's cash is being handed over",
        WithdrawalState.COMPLETED: "this withdrawal was already paid out",
        WithdrawalState.CANCELLED: "this withdrawal was cancelled",
        WithdrawalState.EXPIRED: "this withdrawal has expired",
        WithdrawalState.BLOCKED: "this withdrawal is blocked after wrong PINs",
        WithdrawalState.REVERSED: "this withdrawal was reversed",
        WithdrawalState.PENDING: "this withdrawal is not yet authorized",
    }[found.state]


def _masked(name: str) -> str:
    """`Ana M.`: enough for the customer to recognise, not enough to read out."""
    parts = name.split()
    if len(parts) < 2:
        return parts[0] if parts else "?"
    return f"{parts[0]} {parts[-1][0]}."
