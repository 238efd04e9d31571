"""What the operators' reports say: volumes per product and day, active users, cash at terminals,
money held, and the trial balance. Plain values; the numbers come from the ledger
(`core.db.stats_repository`), named with `core.domain.statistics.product_of`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mwallet.core.domain.ledger import LedgerReport
from mwallet.core.domain.statistics import Bucket

PRODUCTS = ("transfer", "topup", "bill", "airtime", "withdrawal", "cash_in")


@dataclass(frozen=True, slots=True)
class ProductDay:
    """One product on one day: movements settled, the money they moved (fees apart), fees."""

    day: str
    product: str
    currency: str
    count: int
    volume: int
    fees: int


@dataclass(frozen=True, slots=True)
class VolumeReport:
    days: tuple[Bucket, ...]
    rows: tuple[ProductDay, ...]  # only the days and products with movements

    def totals(self) -> dict[tuple[str, str], tuple[int, int, int]]:
        """(product, currency) -> (count, volume, fees) over the window."""
        found: dict[tuple[str, str], tuple[int, int, int]] = {}
        for row in self.rows:
            count, volume, fees = found.get((row.product, row.currency), (0, 0, 0))
            found[(row.product, row.currency)] = (
                count + row.count,
                volume + row.volume,
                fees + row.fees,
            )
        return found


@dataclass(frozen=True, slots=True)
class ActiveDay:
    day: str
    users: int


@dataclass(frozen=True, slots=True)
class ActiveUsers:
    days: tuple[ActiveDay, ...]  # every day of the window, zeros included
    window: int  # distinct users over the whole window (not the sum of the days)
    registered: int  # everyone with a wallet


@dataclass(frozen=True, slots=True)
class FeesReport:
    volumes: VolumeReport  # the rows with fees
    balances: dict[str, int]  # fees:<currency> accounts now, all time


@dataclass(frozen=True, slots=True)
class TerminalCash:
    """One terminal's cash over the window, and where it stands now."""

    terminal_id: str
    kind: str  # atm, agent
    name: str
    agent_phone: str | None
    currency: str  # its account's; the instance's when it has none (`services.statistics`)
    paid_out_count: int
    paid_out: int  # cash handed to customers for withdrawals
    cash_in_count: int
    cash_in: int  # cash an agent took in (e-money sent from their float)
    account_balance: int  # an ATM: e-money owed to its operator; an agent: their float
    cassette_cash: int | None  # an ATM: notes left in it


@dataclass(frozen=True, slots=True)
class OutstandingHold:
    kind: str  # withdrawal, bill, airtime
    id: str
    phone: str
    held: int  # amount and fee
    currency: str
    state: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HoldsReport:
    holds: tuple[OutstandingHold, ...]  # the oldest first, at most the limit asked
    count: int  # all of them
    held: dict[str, int]  # per currency: the sum of all outstanding holds
    holds_accounts: dict[str, int]  # per currency: the holds:<currency> account's balance

    @property
    def matches(self) -> bool:
        """Whether the holds accounts hold exactly what the outstanding holds say."""
        currencies = set(self.held) | set(self.holds_accounts)
        return all(self.held.get(cur, 0) == self.holds_accounts.get(cur, 0) for cur in currencies)


@dataclass(frozen=True, slots=True)
class AccountLine:
    code: str
    kind: str
    currency: str
    balance: int
    status: str


@dataclass(frozen=True, slots=True)
class TrialBalance:
    accounts: tuple[AccountLine, ...]
    verification: LedgerReport  # the postings prove the stored balances (`ledger.verify`)
    at: datetime

    def totals(self) -> dict[str, int]:
        """Per currency: the sum of every balance, which double entry keeps at zero."""
        found: dict[str, int] = {}
        for line in self.accounts:
            found[line.currency] = found.get(line.currency, 0) + line.balance
        return dict(sorted(found.items()))

    def by_kind(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(currency, kind) -> (accounts, balance)."""
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for line in self.accounts:
            count, total = found.get((line.currency, line.kind), (0, 0))
            found[(line.currency, line.kind)] = (count + 1, total + line.balance)
        return dict(sorted(found.items()))

    @property
    def balanced(self) -> bool:
        return all(total == 0 for total in self.totals().values())

    @property
    def matches(self) -> bool:
        """Every account's balance equals its postings, and the books verify."""
        return self.verification.ok
