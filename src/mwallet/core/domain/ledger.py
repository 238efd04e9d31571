"""The double-entry ledger's rules: accounts, postings and balanced journal entries.

Sign convention: a posting's amount is added to its account's balance. A customer's wallet holds a
positive balance; an account that stands for money outside the wallet (a funding source) goes
negative by what it brought in. Every journal entry's postings sum to zero per currency, so the sum
of all balances of a currency is always zero: money is never created or destroyed, only moved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from mwallet.core.domain.ids import made_at
from mwallet.core.domain.money import Money
from mwallet.core.errors import LedgerInvariantBroken


class AccountKind(StrEnum):
    WALLET = "wallet"  # a customer's e-money: never negative
    FUNDING = "funding"  # where top-ups come from: negative by what it has paid in
    HOLD = "hold"  # money of pending withdrawals, one per currency: never negative
    CASH = "cash"  # e-money an ATM has paid out in cash, owed to its operator: never negative
    FEES = "fees"  # fees the wallet has earned, one per currency: never negative
    PAYABLE = "payable"  # what the wallet owes a biller for bills paid: never negative


class AccountStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"  # no money in or out until unfrozen
    CLOSED = "closed"  # final


# Accounts whose balance must never go below zero.
NON_NEGATIVE_KINDS = frozenset(
    {
        AccountKind.WALLET,
        AccountKind.HOLD,
        AccountKind.CASH,
        AccountKind.FEES,
        AccountKind.PAYABLE,
    }
)

# No balance may leave this range, so balance arithmetic never nears a 64-bit integer's edge
# (where SQLite would quietly switch to floating point, and PostgreSQL would fail).
MAX_BALANCE_MINOR = 2**62
# How far an account's last posting may be ahead of the clock before `verify` calls it a problem.
# Each posting takes a time after its account's last one, so a clock that once ran ahead dates
# every later posting of the accounts it touched (on a house account: all of them) after that
# moment, until the real time catches up: statements, limits and statistics read them there.
POSTED_AHEAD_TOLERANCE = timedelta(minutes=5)


class EntryKind(StrEnum):
    TRANSFER = "transfer"
    TOPUP = "topup"
    HOLD = "hold"  # a withdrawal's amount leaves the wallet for the holds account
    CAPTURE = "capture"  # a redeemed withdrawal's hold is paid out to the terminal
    RELEASE = "release"  # a withdrawal that did not happen: its hold goes back
    CASH_IN = "cash_in"  # an agent took cash and sent e-money from their float
    PAYMENT_HOLD = "payment_hold"  # a bill's amount and fee leave the wallet for the holds
    PAYMENT = "payment"  # the provider approved: the hold goes to the biller (and the fee)
    PAYMENT_RELEASE = "payment_release"  # declined: the hold goes back


def wallet_account_code(user_id: str) -> str:
    return f"wallet:{user_id}"


def funding_account_code(source: str, currency: str) -> str:
    return f"funding:{source}:{currency}"


def holds_account_code(currency: str) -> str:
    return f"holds:{currency}"


def cash_account_code(terminal_id: str) -> str:
    return f"cash:{terminal_id}"


def fees_account_code(currency: str) -> str:
    return f"fees:{currency}"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    code: str
    kind: AccountKind
    currency: str
    balance: Money
    status: AccountStatus
    owner_user_id: str | None


@dataclass(frozen=True, slots=True)
class Posting:
    account_id: int
    amount: Money


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One movement of money: postings that sum to zero in every currency."""

    id: str
    kind: EntryKind
    created_at: datetime
    postings: tuple[Posting, ...]
    memo: str | None = None
    # The withdrawal or payment this entry belongs to, if any: history reads its state and fee.
    ref: str | None = None

    def __post_init__(self) -> None:
        check_balanced(self.postings)
        # The operators' reports find a window of time's entries as a range of their ids.
        if not made_at(self.id, self.created_at):
            raise LedgerInvariantBroken(
                f"entry {self.id} was not made in the millisecond of its time {self.created_at}"
            )


def check_balanced(postings: Sequence[Posting]) -> None:
    """Refuse a set of postings that would create or destroy money."""
    if len(postings) == 2:  # most entries (a transfer, a top-up): one pair that cancels out
        first, second = postings[0].amount, postings[1].amount
        if first.minor and first.minor + second.minor == 0 and first.currency == second.currency:
            return
    if len(postings) < 2:
        raise LedgerInvariantBroken("a journal entry needs at least two postings")
    totals: defaultdict[str, int] = defaultdict(int)
    for posting in postings:
        if posting.amount.minor == 0:
            raise LedgerInvariantBroken("a posting of zero moves nothing")
        totals[posting.amount.currency] += posting.amount.minor
    unbalanced = {currency: total for currency, total in totals.items() if total != 0}
    if unbalanced:
        raise LedgerInvariantBroken(f"postings do not sum to zero: {unbalanced}")


def move(amount: Money, *, debit: int, credit: int) -> tuple[Posting, Posting]:
    """The two postings that move `amount` out of account `debit` into account `credit`."""
    if not amount.is_positive:
        raise LedgerInvariantBroken("a movement needs a positive amount")
    if debit == credit:
        raise LedgerInvariantBroken("a movement needs two different accounts")
    return Posting(debit, -amount), Posting(credit, amount)


def split(total: Money, *, debit: int, credits: Sequence[tuple[int, Money]]) -> tuple[Posting, ...]:
    """`total` out of `debit`, shared among `credits` (account, amount); zero shares are left out,
    and the shares must add up to `total`."""
    shares = [(account, amount) for account, amount in credits if amount.minor != 0]
    if not total.is_positive or any(not amount.is_positive for _, amount in shares):
        raise LedgerInvariantBroken("a movement needs positive amounts")
    if sum(amount.minor for _, amount in shares) != total.minor:
        raise LedgerInvariantBroken("the shares do not add up to the total")
    if any(account == debit for account, _ in shares):
        raise LedgerInvariantBroken("a movement needs two different accounts")
    return (Posting(debit, -total), *(Posting(account, amount) for account, amount in shares))


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What `verify` found: empty problem list means the books are sound. `warnings`: what is
    not wrong with the books but needs a person's eye (an account's postings dated ahead of the
    clock)."""

    accounts: int
    entries: int
    postings: int
    totals_by_currency: dict[str, int]
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems
