"""Double entry: postings of every journal entry sum to zero per currency, or nothing is posted."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.ids import first_id_of, new_id
from mwallet.core.domain.ledger import (
    EntryKind,
    JournalEntry,
    Posting,
    check_balanced,
    funding_account_code,
    move,
    wallet_account_code,
)
from mwallet.core.domain.money import MINOR_UNIT_EXPONENTS, Money, max_minor
from mwallet.core.errors import Category, LedgerInvariantBroken

WHEN = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
ENTRY_ID = new_id(WHEN)


def usd(minor: int) -> Money:
    return Money(minor, "USD")


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


# --- check_balanced ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "postings",
    [
        [Posting(1, usd(-100)), Posting(2, usd(100))],
        [Posting(1, usd(-300)), Posting(2, usd(100)), Posting(3, usd(200))],
        # Per currency: two movements in one entry, each balanced in its own currency.
        [
            Posting(1, usd(-100)),
            Posting(2, usd(100)),
            Posting(3, eur(-7)),
            Posting(4, eur(7)),
        ],
        # The same account may appear twice.
        [Posting(1, usd(-100)), Posting(1, usd(40)), Posting(2, usd(60))],
    ],
)
def test_balanced_postings_are_accepted(postings: list[Posting]) -> None:
    check_balanced(postings)
    check_balanced(tuple(reversed(postings)))


@pytest.mark.parametrize(
    "postings",
    [
        [],
        [Posting(1, usd(100))],
        [Posting(1, usd(0))],
        # Unbalanced: money created or destroyed.
        [Posting(1, usd(-100)), Posting(2, usd(99))],
        [Posting(1, usd(-100)), Posting(2, usd(101))],
        [Posting(1, usd(100)), Posting(2, usd(100))],
        # A zero posting moves nothing, even among balanced ones.
        [Posting(1, usd(-100)), Posting(2, usd(100)), Posting(3, usd(0))],
        [Posting(1, usd(0)), Posting(2, usd(0))],
        # Amounts in two currencies never offset each other.
        [Posting(1, usd(-100)), Posting(2, eur(100))],
        # One currency balances, the other does not.
        [
            Posting(1, usd(-100)),
            Posting(2, usd(100)),
            Posting(3, eur(-7)),
            Posting(4, eur(8)),
        ],
        # Both unbalanced by amounts that cancel when currencies are ignored.
        [
            Posting(1, usd(-100)),
            Posting(2, usd(101)),
            Posting(3, eur(-8)),
            Posting(4, eur(7)),
        ],
    ],
)
def test_postings_that_create_destroy_or_move_nothing_are_refused(
    postings: list[Posting],
) -> None:
    with pytest.raises(LedgerInvariantBroken) as caught:
        check_balanced(postings)
    assert caught.value.category is Category.INTEGRITY
    assert caught.value.code == "ledger_invariant_broken"


# --- move ----------------------------------------------------------------------------------------
def test_move_takes_from_the_debit_account_and_gives_to_the_credit_account() -> None:
    out, into = move(usd(250), debit=7, credit=9)
    assert out == Posting(7, usd(-250))
    assert into == Posting(9, usd(250))
    check_balanced([out, into])


@pytest.mark.parametrize("amount", [usd(0), usd(-1), eur(-500)])
def test_move_refuses_an_amount_that_is_not_positive(amount: Money) -> None:
    with pytest.raises(LedgerInvariantBroken):
        move(amount, debit=1, credit=2)


def test_move_refuses_moving_money_to_the_same_account() -> None:
    with pytest.raises(LedgerInvariantBroken):
        move(usd(100), debit=3, credit=3)


# --- JournalEntry --------------------------------------------------------------------------------
def test_a_journal_entry_holds_a_balanced_movement() -> None:
    postings = move(usd(100), debit=1, credit=2)
    entry = JournalEntry(ENTRY_ID, EntryKind.TRANSFER, WHEN, postings, memo="lunch")
    assert entry.postings == postings
    assert entry.kind is EntryKind.TRANSFER


@pytest.mark.parametrize(
    "postings",
    [
        (),
        (Posting(1, usd(100)),),
        (Posting(1, usd(-100)), Posting(2, usd(50))),
        (Posting(1, usd(-100)), Posting(2, usd(100)), Posting(3, usd(0))),
        (Posting(1, usd(-100)), Posting(2, eur(100))),
    ],
)
def test_a_journal_entry_cannot_be_built_unbalanced(postings: tuple[Posting, ...]) -> None:
    with pytest.raises(LedgerInvariantBroken):
        JournalEntry(ENTRY_ID, EntryKind.TOPUP, WHEN, postings)


@pytest.mark.parametrize(
    "entry_id",
    [
        first_id_of(WHEN - timedelta(milliseconds=1)),
        first_id_of(WHEN + timedelta(milliseconds=1)),
        first_id_of(WHEN + timedelta(days=3)),
        "01KF000000000000000000000",  # one character short
        "E1",
    ],
)
def test_a_journal_entry_refuses_an_id_not_made_in_its_millisecond(entry_id: str) -> None:
    """The reports find a window's entries by their ids: an entry's id tells its time."""
    with pytest.raises(LedgerInvariantBroken, match="millisecond"):
        JournalEntry(entry_id, EntryKind.TRANSFER, WHEN, move(usd(100), debit=1, credit=2))


def test_a_journal_entry_takes_any_id_of_its_millisecond() -> None:
    late = WHEN + timedelta(microseconds=999)
    for entry_id in (new_id(WHEN), new_id(late), first_id_of(WHEN)):
        JournalEntry(entry_id, EntryKind.TRANSFER, late, move(usd(100), debit=1, credit=2))


def test_account_codes() -> None:
    assert wallet_account_code("01ABC") == "wallet:01ABC"
    assert funding_account_code("sandbox", "USD") == "funding:sandbox:USD"


# --- properties ----------------------------------------------------------------------------------
@st.composite
def moves(draw: st.DrawFn) -> tuple[Money, int, int]:
    currency = draw(st.sampled_from(sorted(MINOR_UNIT_EXPONENTS)))
    amount = Money(draw(st.integers(min_value=1, max_value=max_minor(currency))), currency)
    debit = draw(st.integers(min_value=1, max_value=6))
    credit = draw(st.integers(min_value=1, max_value=6).filter(lambda n: n != debit))
    return amount, debit, credit


@given(st.lists(moves(), min_size=1, max_size=20), st.data())
def test_any_list_of_moves_sums_to_zero(
    planned: list[tuple[Money, int, int]], data: st.DataObject
) -> None:
    postings = [
        p for amount, debit, credit in planned for p in move(amount, debit=debit, credit=credit)
    ]

    totals: defaultdict[str, int] = defaultdict(int)
    for posting in postings:
        totals[posting.amount.currency] += posting.amount.minor
    assert set(totals.values()) == {0}

    # Each account changes by what it received minus what it gave.
    expected: defaultdict[tuple[int, str], int] = defaultdict(int)
    for amount, debit, credit in planned:
        expected[debit, amount.currency] -= amount.minor
        expected[credit, amount.currency] += amount.minor
    by_account: defaultdict[tuple[int, str], int] = defaultdict(int)
    for posting in postings:
        by_account[posting.account_id, posting.amount.currency] += posting.amount.minor
    assert by_account == expected

    check_balanced(postings)
    check_balanced(data.draw(st.permutations(postings)))  # the order of postings does not matter
    JournalEntry(ENTRY_ID, EntryKind.TRANSFER, WHEN, tuple(postings))


@given(st.lists(moves(), min_size=1, max_size=10), st.data())
def test_dropping_any_posting_of_a_balanced_entry_is_refused(
    planned: list[tuple[Money, int, int]], data: st.DataObject
) -> None:
    postings = [
        p for amount, debit, credit in planned for p in move(amount, debit=debit, credit=credit)
    ]
    dropped = data.draw(st.integers(min_value=0, max_value=len(postings) - 1))
    with pytest.raises(LedgerInvariantBroken):
        check_balanced(postings[:dropped] + postings[dropped + 1 :])
