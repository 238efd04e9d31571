"""Use cases of terminals: register ATMs and agents, load an ATM's cassettes, a terminal's day
(cash, float, what it paid out and took in), and which terminal a principal stands for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from mwallet.core.clock import Clock
from mwallet.core.domain.audit import AuditEvent
from mwallet.core.domain.clients import KIND_SCOPES, ClientKind, OAuthClient, check_client_name
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.ledger import (
    AccountKind,
    EntryKind,
    cash_account_code,
    wallet_account_code,
)
from mwallet.core.domain.money import Money, currency_exponent
from mwallet.core.domain.paging import check_limit
from mwallet.core.domain.roles import Permission, Role
from mwallet.core.domain.tariffs import day_start
from mwallet.core.domain.terminals import MAX_NOTES_PER_LOAD, Terminal
from mwallet.core.domain.users import Principal, normalize_phone
from mwallet.core.domain.withdrawals import Channel, WithdrawalState
from mwallet.core.errors import (
    DataIntegrityError,
    InvalidInput,
    PermissionDenied,
    Refused,
    TerminalNotFound,
    UserNotFound,
    quoted,
)
from mwallet.core.security import token_digest
from mwallet.core.services.authorization import authorize
from mwallet.core.services.unit_of_work import InstanceSettings, UnitOfWork

ATM_SCOPE = "atm:withdrawals"


@dataclass(frozen=True, slots=True)
class NewTerminal:
    terminal: Terminal
    client: OAuthClient | None  # an ATM's OAuth client
    client_secret: str | None  # shown once


def add_atm(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, settings: InstanceSettings, name: str
) -> NewTerminal:
    """An ATM: an OAuth client of kind atm, a terminal, and the cash account it pays out from (in
    the instance's currency)."""
    import secrets

    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "register terminals")
    now = clock.now()
    label = check_client_name(name)
    client = OAuthClient(new_id(now), label, ClientKind.ATM, KIND_SCOPES[ClientKind.ATM], now, None)
    secret = secrets.token_urlsafe(32)
    terminal = Terminal(new_id(now), Channel.ATM, label, client.id, None, now)
    with uow:
        uow.clients.add(client, token_digest(secret))
        uow.terminals.add(terminal)
        uow.ledger.open_account(
            code=cash_account_code(terminal.id),
            kind=AccountKind.CASH,
            currency=settings.currency,
            owner_user_id=None,
            created_at=now,
        )
        uow.audit.append(
            AuditEvent("terminal.added", actor.user_id, terminal.id, {"kind": "atm"}), now
        )
        uow.commit()
    return NewTerminal(terminal, client, secret)


def add_agent(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    phone: str,
    name: str | None,
) -> NewTerminal:
    """An agent: a registered user, given the agent role, who pays out from their own cash."""
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "register terminals")
    e164 = normalize_phone(phone, settings.region)
    now = clock.now()
    with uow:
        uow.users.lock_roles()
        user = uow.users.by_phone(e164)
        if user is None:
            raise UserNotFound(f"no user is registered to {e164}")
        if user.role not in (Role.CUSTOMER, Role.AGENT):
            raise Refused(f"{e164} is {user.role.value}: an agent must be a plain user")
        if uow.terminals.by_agent(user.id) is not None:
            raise Refused(f"{e164} is an agent already")
        label = check_client_name(name or user.display_name)
        terminal = Terminal(new_id(now), Channel.AGENT, label, None, user.id, now)
        uow.terminals.add(terminal)
        if user.role is not Role.AGENT:
            uow.users.set_role(user.id, Role.AGENT)
            uow.audit.append(
                AuditEvent(
                    "user.role_changed", actor.user_id, user.id,
                    {"from": user.role.value, "to": Role.AGENT.value},
                ),
                now,
            )  # fmt: skip
        uow.audit.append(
            AuditEvent("terminal.added", actor.user_id, terminal.id, {"kind": "agent"}), now
        )
        uow.commit()
    return NewTerminal(terminal, None, None)


@dataclass(frozen=True, slots=True)
class TerminalDay:
    """A terminal's state and its day so far (since midnight UTC).

    `cash` is what an ATM holds in its cassettes; for an agent, their float (the e-money in their
    wallet, which pays for cash-ins and is paid back by withdrawals). An agent's cash drawer
    changes by `cash_in - paid_out` over the day.
    """

    terminal: Terminal
    since: datetime
    cassettes: dict[int, int]
    cash: Money
    paid_out: Money
    paid_out_count: int
    reversed_count: int
    cash_in: Money
    cash_in_count: int


def find(uow: UnitOfWork, terminal_id: str) -> Terminal:
    """A terminal by id, to open it: the id is not a secret (its client secret or its agent's
    login is what lets it in)."""
    with uow.read_only():
        found = uow.terminals.get(terminal_id.strip())
    if found is None:
        raise TerminalNotFound(f"no terminal {quoted(terminal_id)}")
    return found


def station_of(uow: UnitOfWork, principal: Principal, *, lock: bool = False) -> Terminal:
    """The terminal a principal stands for: an ATM client with its scope, or an agent."""
    if principal.client:
        if ATM_SCOPE not in principal.scopes:
            raise PermissionDenied(f"this token lacks the {ATM_SCOPE} scope")
        station = uow.terminals.by_client(principal.user_id)
    else:
        station = uow.terminals.by_agent(principal.user_id)
    if station is None:
        raise PermissionDenied("this is not a registered terminal: ask an admin to add it")
    if lock:
        locked = uow.terminals.lock_for_update(station.id)
        if locked is None:  # pragma: no cover - terminals are never deleted
            raise DataIntegrityError("a terminal vanished")
        return locked
    return station


def day(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    terminal_id: str | None = None,
) -> TerminalDay:
    """A terminal's day: its own (`terminal_id` None), or any terminal's for an admin."""
    if terminal_id is None:
        authorize(uow, clock, actor, Permission.REDEEM_WITHDRAWALS, "run a terminal")
    else:
        authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "see a terminal's day")
    now = clock.now()
    since = day_start(now)
    with uow.read_only():
        found = (
            station_of(uow, actor)
            if terminal_id is None
            else uow.terminals.get(terminal_id.strip())
        )
        if found is None:
            where = "of yours" if terminal_id is None else quoted(terminal_id)
            raise TerminalNotFound(f"no terminal {where}")
        station = found
        currency = settings.currency
        settled = uow.withdrawals.settled_at(station.id, since)
        paid_count, paid = settled.get(WithdrawalState.COMPLETED, (0, 0))
        reversed_count, _ = settled.get(WithdrawalState.REVERSED, (0, 0))
        cassettes: dict[int, int] = {}
        cash_in_count, cash_in = 0, 0
        if station.kind is Channel.ATM:
            cassettes = uow.terminals.cassettes(station.id)
            cash = sum(denomination * notes for denomination, notes in cassettes.items())
        else:
            assert station.agent_user_id is not None
            wallet = uow.ledger.by_code(wallet_account_code(station.agent_user_id))
            cash = wallet.balance.minor if wallet is not None else 0
            if wallet is not None:
                cash_in_count, cash_in = uow.ledger.paid_out(wallet.id, EntryKind.CASH_IN, since)
    return TerminalDay(
        station, since, cassettes, Money(cash, currency), Money(paid, currency), paid_count,
        reversed_count, Money(cash_in, currency), cash_in_count,
    )  # fmt: skip


def list_terminals(
    uow: UnitOfWork, clock: Clock, *, actor: Principal, limit: int
) -> Sequence[tuple[Terminal, dict[int, int]]]:
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "list terminals")
    check_limit(limit)
    with uow.read_only():
        found = uow.terminals.page(limit=limit)
        return [(terminal, uow.terminals.cassettes(terminal.id)) for terminal in found]


def load_cassettes(
    uow: UnitOfWork,
    clock: Clock,
    *,
    actor: Principal,
    settings: InstanceSettings,
    terminal_id: str,
    notes: Mapping[int, int],
) -> dict[int, int]:
    """Add notes (denomination in minor units -> count) to an ATM; its cassettes afterwards."""
    authorize(uow, clock, actor, Permission.MANAGE_TERMINALS, "load cassettes")
    if not notes:
        raise InvalidInput("say which notes to load, e.g. 50x100")
    now = clock.now()
    with uow:
        terminal = uow.terminals.get(terminal_id.strip())
        if terminal is None:
            raise TerminalNotFound(f"no terminal {quoted(terminal_id)}")
        if terminal.kind is not Channel.ATM:
            raise Refused("only an ATM has cassettes; an agent pays out of their own cash")
        unit = 10 ** currency_exponent(settings.currency)
        for denomination, count in notes.items():
            if denomination <= 0 or denomination % unit:
                raise InvalidInput("a note is a whole number of currency units")
            if not 0 < count <= MAX_NOTES_PER_LOAD:
                raise InvalidInput(f"load 1 to {MAX_NOTES_PER_LOAD:,} notes of a kind at a time")
            uow.terminals.load(terminal.id, denomination, count)
        uow.audit.append(
            AuditEvent(
                "terminal.loaded", actor.user_id, terminal.id,
                {str(denomination): count for denomination, count in sorted(notes.items())},
            ),
            now,
        )  # fmt: skip
        loaded = uow.terminals.cassettes(terminal.id)
        uow.commit()
    return loaded
