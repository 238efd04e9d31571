"""A statement's movement rows are formatted by hand, a batch in one loop
(`render.movements.csv_lines`), to the bytes the csv module writes from each line's fields as
`render.values` spells them: any text in a note or a counterparty (commas, quotes, line ends),
any amount and balance of any currency's exponent, any time, before 1970 or after."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mwallet.core.domain.instants import utc_micros
from mwallet.core.domain.money import decimal_string
from mwallet.core.domain.movements import Cursor, Movement, MovementType
from mwallet.render.movements import csv_lines, note_for_csv, note_from_csv
from mwallet.render.values import when

TEXT = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.text(alphabet=",\"\r\n \t;x\u2028é=+-@'", max_size=8),
)
MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
)
MINOR = st.integers(min_value=-(10**15), max_value=10**15)


def movement(
    kind: MovementType, at: datetime, *, amount: int, balance: int, party: str | None,
    note: str | None,
) -> Movement:  # fmt: skip
    return Movement(Cursor(1, 0), "01JENTRY", kind, utc_micros(at), amount, balance, "XXX", party,
                    note, "completed")  # fmt: skip


LINES = st.lists(
    st.builds(
        movement,
        st.sampled_from(MovementType),
        MOMENTS,
        amount=MINOR,
        balance=MINOR,
        party=TEXT,
        note=TEXT,
    ),
    max_size=6,
)


def through_the_csv_module(lines: list[Movement], exponent: int) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        (
            when(line.created_at), line.type.value, line.counterparty or "",
            note_for_csv(line.note) if line.note else "",
            decimal_string(line.amount_minor, exponent), line.currency,
            decimal_string(line.balance_minor, exponent), line.state, line.entry_id,
        )
        for line in lines
    )  # fmt: skip
    return out.getvalue()


@given(LINES, st.sampled_from([0, 2, 3]))
def test_movement_rows_are_what_the_csv_module_writes(lines: list[Movement], exponent: int) -> None:
    assert csv_lines(lines, exponent) == through_the_csv_module(lines, exponent)


def test_a_note_that_must_be_quoted_is() -> None:
    at = utc_micros(datetime(2026, 1, 15, 9, 30, 5, 999_999, tzinfo=UTC))
    line = Movement(
        Cursor(7, 0), "01JENTRY", MovementType.TRANSFER_OUT, at, -1205, 5, "USD",
        "Água, Lda", 'lunch, "the usual"\nthanks', "completed",
    )  # fmt: skip
    assert csv_lines([line], 2) == (
        '2026-01-15T09:30:05Z,transfer_out,"Água, Lda","lunch, ""the usual""\nthanks",'
        "-12.05,USD,0.05,completed,01JENTRY\n"
    )


def test_a_note_a_spreadsheet_would_run_is_written_as_text() -> None:
    """Another person's note must not become a formula in the statement a customer opens in a
    spreadsheet: it is written after a ' (and one that starts with ' gets one more); a number, such
    as the phone number an airtime purchase topped up, stays as it is."""
    at = utc_micros(datetime(2026, 1, 15, 9, 30, 5, tzinfo=UTC))
    notes = ['=HYPERLINK("http://x","ok")', "-2+3+cmd|' /C calc'!A0", "+1-", "@SUM(A1)", "\tx",
             "'quoted", "ok = ok", "+258 84 830 0001", "-12"]  # fmt: skip
    lines = [
        Movement(Cursor(7, 0), "01J", MovementType.TRANSFER_IN, at, 5, 5, "USD", None, note, "ok")
        for note in notes
    ]
    written = [row[3] for row in csv.reader(io.StringIO(csv_lines(lines, 2)))]
    assert written == [
        """'=HYPERLINK("http://x","ok")""", "'-2+3+cmd|' /C calc'!A0", "'+1-", "'@SUM(A1)",
        "'\tx", "''quoted", "ok = ok", "+258 84 830 0001", "-12",
    ]  # fmt: skip
    assert [note_from_csv(field) for field in written] == notes


@given(st.text())
def test_a_note_read_back_from_csv_is_the_note_written(note: str) -> None:
    assert note_from_csv(note_for_csv(note)) == note
