"""What a terminal reads: a typed code or a scanned `MW1:` payload from its entry field, a real
QR image (PNG or JPEG, any scale, turned any way) decoded with zxing-cpp, and the receipt it
prints, which shows the amount, the notes and the masked name, and nothing a stranger could use.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import pytest
import segno
from PIL import Image

from mwallet.atm.reader import ScannedQr, TypedCode, read_entry, read_qr_image
from mwallet.atm.session import notes_lines, receipt_text
from mwallet.core import withdrawal_qr
from mwallet.core.domain.ids import new_id
from mwallet.core.domain.money import Money
from mwallet.core.domain.withdrawals import Channel, Withdrawal, WithdrawalState
from mwallet.core.errors import InvalidInput
from mwallet.core.services.withdrawals import Redemption
from mwallet.core.tokens import new_signing_key
from mwallet.core.withdrawal_qr import InvalidQr, QrClaims
from tests.support import START


# --- read_entry ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("0123456789", "0123456789"),
        ("012 345 6789", "0123456789"),
        ("012-345-6789", "0123456789"),
        ("  98-76 54-3210 \n", "9876543210"),
        ("0000000000", "0000000000"),
    ],
)
def test_ten_digits_are_a_typed_code(typed: str, code: str) -> None:
    assert read_entry(typed) == TypedCode(code)


@pytest.mark.parametrize(
    ("scanned", "payload"),
    [
        ("MW1:ABCDEF.GHIJ", "MW1:ABCDEF.GHIJ"),
        ("mw1:abcdef.ghij", "mw1:abcdef.ghij"),
        ("Mw1:ABC", "Mw1:ABC"),
        ("  MW1:ABCDEF.GHIJ\n", "MW1:ABCDEF.GHIJ"),
        ("\tMW1:0123456789\r\n", "MW1:0123456789"),
    ],
)
def test_an_mw1_prefix_is_a_scanned_payload(scanned: str, payload: str) -> None:
    # The reader only tells the two apart: the payload is checked by the services.
    assert read_entry(scanned) == ScannedQr(payload)


def test_a_real_payload_is_read_as_scanned_and_still_verifies() -> None:
    payload, public, claims = signed_payload()
    entry = read_entry(f"  {payload}\n")
    assert entry == ScannedQr(payload)
    assert isinstance(entry, ScannedQr)
    assert withdrawal_qr.verify(entry.payload, public_key=public) == claims


def test_a_lower_case_payload_still_verifies() -> None:
    """A scanner in the wrong case mode: base32 and the prefix read the same either way."""
    payload, public, claims = signed_payload()
    entry = read_entry(payload.lower())
    assert isinstance(entry, ScannedQr)
    assert withdrawal_qr.verify(entry.payload, public_key=public) == claims


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "   ",
        "\n",
        "012345678",  # nine digits
        "01234567890",  # eleven
        "abcdefghij",
        "012345678a",
        "0123.456.789",
        "".join(chr(0xFF10 + n) for n in range(10)),  # full-width digits: not ASCII
        "MW2:ABCDEF.GHIJ",
        "MW1",
        "http://example.com/0123456789",
    ],
)
def test_anything_else_is_invalid_input(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_entry(typed)
    assert type(caught.value) is InvalidInput


def test_an_empty_entry_says_what_to_do() -> None:
    with pytest.raises(InvalidInput, match="type the withdrawal code or scan its QR code"):
        read_entry("  ")


def test_a_short_code_says_how_long_a_code_is() -> None:
    with pytest.raises(InvalidInput, match="10 digits"):
        read_entry("012345678")


# --- read_qr_image -------------------------------------------------------------------------------
def signed_payload(amount_minor: int = 6000) -> tuple[str, bytes, QrClaims]:
    """A real withdrawal payload, signed with a fresh key: (payload, public key, claims)."""
    private, public = new_signing_key()
    claims = QrClaims(
        withdrawal_id=new_id(START),
        amount=Money(amount_minor, "USD"),
        expires_at=START + timedelta(minutes=30),
        nonce=secrets.token_urlsafe(12),
        key_id="k1",
    )
    return withdrawal_qr.sign(claims, private_key=private), public, claims


def qr_png(folder: Path, content: str, *, scale: int = 4, name: str = "qr.png") -> Path:
    path = folder / name
    segno.make(content, error="m").save(str(path), scale=scale)
    return path


def rotated(path: Path, degrees: float) -> Path:
    target = path.with_name(f"{path.stem}-rot{degrees:g}.png")
    with Image.open(path) as image:
        turned = image.convert("RGB").rotate(degrees, expand=True, fillcolor="white")
    turned.save(target)
    return target


def read_back(path: Path, public: bytes, claims: QrClaims, payload: str) -> None:
    found = read_qr_image(path)
    assert found == ScannedQr(payload)
    assert withdrawal_qr.verify(found.payload, public_key=public) == claims


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_a_png_reads_back_at_any_scale(tmp_path: Path, scale: int) -> None:
    payload, public, claims = signed_payload()
    read_back(qr_png(tmp_path, payload, scale=scale), public, claims, payload)


@pytest.mark.parametrize("degrees", [90, 180, 270, 15, -15])
def test_a_turned_png_reads_back(tmp_path: Path, degrees: int) -> None:
    payload, public, claims = signed_payload()
    turned = rotated(qr_png(tmp_path, payload, scale=6), degrees)
    with Image.open(turned) as image:
        if degrees % 90:
            assert image.size[0] > 6 * segno.make(payload, error="m").symbol_size()[0]
    read_back(turned, public, claims, payload)


@pytest.mark.parametrize("quality", [95, 60])
def test_a_jpeg_reads_back(tmp_path: Path, quality: int) -> None:
    payload, public, claims = signed_payload()
    png = qr_png(tmp_path, payload, scale=5)
    jpeg = tmp_path / "qr.jpg"
    with Image.open(png) as image:
        image.convert("RGB").save(jpeg, format="JPEG", quality=quality)
    with Image.open(jpeg) as image:
        assert image.format == "JPEG"
    read_back(jpeg, public, claims, payload)


def test_a_photo_like_image_with_the_qr_off_centre_reads_back(tmp_path: Path) -> None:
    """The code small on a large grey canvas, as a photo of a phone screen would have it."""
    payload, public, claims = signed_payload()
    png = qr_png(tmp_path, payload, scale=3)
    canvas = Image.new("RGB", (1200, 900), (200, 200, 200))
    with Image.open(png) as image:
        canvas.paste(image.convert("RGB"), (700, 450))
    photo = tmp_path / "photo.png"
    canvas.save(photo)
    read_back(photo, public, claims, payload)


def test_the_withdrawal_qr_is_picked_among_others(tmp_path: Path) -> None:
    payload, public, claims = signed_payload()
    other = qr_png(tmp_path, "https://example.com/pay?x=1", scale=4, name="url.png")
    ours = qr_png(tmp_path, payload, scale=4, name="ours.png")
    with Image.open(other) as left, Image.open(ours) as right:
        both = Image.new("RGB", (left.width + right.width + 40, max(left.height, right.height)))
        both.paste((255, 255, 255), (0, 0, both.width, both.height))
        both.paste(left.convert("RGB"), (0, 0))
        both.paste(right.convert("RGB"), (left.width + 40, 0))
    path = tmp_path / "both.png"
    both.save(path)
    read_back(path, public, claims, payload)


def test_a_payload_encoded_with_whitespace_comes_back_stripped(tmp_path: Path) -> None:
    payload, public, claims = signed_payload()
    read_back(qr_png(tmp_path, f"  {payload}\n", scale=4), public, claims, payload)


@pytest.mark.parametrize(
    "content",
    ["https://example.com/withdraw/0123456789", "0123456789", "MW2:ABCDEF.GHIJ", "WIFI:S:x;;"],
)
def test_another_qr_code_is_invalid_qr(tmp_path: Path, content: str) -> None:
    with pytest.raises(InvalidQr, match="no withdrawal QR code"):
        read_qr_image(qr_png(tmp_path, content))


def test_an_image_without_any_qr_code_is_invalid_qr(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(path)
    with pytest.raises(InvalidQr):
        read_qr_image(path)


def test_a_file_that_is_not_an_image_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("MW1:ABCDEF.GHIJ\n")
    with pytest.raises(InvalidInput, match="is not an image") as caught:
        read_qr_image(path)
    assert type(caught.value) is InvalidInput


def test_a_truncated_png_is_invalid_input(tmp_path: Path) -> None:
    payload, _, _ = signed_payload()
    png = qr_png(tmp_path, payload, scale=4)
    cut = tmp_path / "cut.png"
    cut.write_bytes(png.read_bytes()[: png.stat().st_size // 2])
    with pytest.raises(InvalidInput) as caught:
        read_qr_image(cut)
    assert type(caught.value) is InvalidInput


def test_a_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no image at") as caught:
        read_qr_image(tmp_path / "nowhere.png")
    assert type(caught.value) is InvalidInput


def test_a_folder_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no image at") as caught:
        read_qr_image(tmp_path)
    assert type(caught.value) is InvalidInput


# --- the receipt ---------------------------------------------------------------------------------
def paid(
    amount_minor: int = 6000, notes: dict[int, int] | None = None, fee_minor: int = 0
) -> tuple[Withdrawal, Redemption]:
    withdrawal = Withdrawal(
        id=new_id(START),
        user_id="user-1",
        amount=Money(amount_minor, "USD"),
        channel=Channel.ATM,
        state=WithdrawalState.COMPLETED,
        created_at=START,
        expires_at=START + timedelta(minutes=30),
        pin_attempts=0,
        terminal_id="terminal-1",
        updated_at=START,
        fee=Money(fee_minor, "USD"),
    )
    return withdrawal, Redemption(withdrawal, "Ana M.", notes)


def test_the_receipt_shows_amount_notes_name_date_and_status() -> None:
    withdrawal, redemption = paid(17000, {5000: 3, 2000: 1})
    text = receipt_text("ATM Baixa 01", withdrawal, redemption, START)
    lines = text.splitlines()
    assert lines[0].strip() == "ATM Baixa 01"
    assert lines[1].strip() == "CASH WITHDRAWAL"
    assert "170.00 USD" in text
    assert "Ana M." in text
    assert "2026-01-15 09:30 UTC" in text
    assert "COMPLETED" in text
    # The notes, largest first, each on its own line.
    notes = [line.strip() for line in lines if " x " in line]
    assert notes == ["3 x 50.00 USD", "1 x 20.00 USD"]
    # Fixed width: a receipt printer's 32 columns.
    assert {len(line) for line in lines} == {32}


def test_the_receipt_names_the_withdrawal_by_its_tail_only() -> None:
    withdrawal, redemption = paid()
    text = receipt_text("ATM", withdrawal, redemption, START)
    assert withdrawal.id[-10:] in text
    assert withdrawal.id not in text
    assert withdrawal.user_id not in text
    assert withdrawal.terminal_id is not None
    assert withdrawal.terminal_id not in text


def test_the_receipt_shows_a_fee_only_when_there_is_one() -> None:
    withdrawal, redemption = paid(6000, {2000: 3}, fee_minor=150)
    lines = receipt_text("ATM", withdrawal, redemption, START).splitlines()
    assert f"{'Fee':<8}{'1.50 USD':>24}" in lines
    assert {len(line) for line in lines} == {32}
    free, redemption = paid(6000, {2000: 3})
    assert "Fee" not in receipt_text("ATM", free, redemption, START)


def test_an_agents_receipt_has_no_notes() -> None:
    withdrawal, redemption = paid(2550, None)
    text = receipt_text("Agent Maria", withdrawal, redemption, START)
    assert "25.50 USD" in text
    assert " x " not in text


def test_notes_lines_are_largest_first() -> None:
    assert notes_lines({2000: 2, 10000: 1, 5000: 1}, "USD") == [
        "1 x 100.00 USD",
        "1 x 50.00 USD",
        "2 x 20.00 USD",
    ]
    assert notes_lines(None, "USD") == []
    assert notes_lines({}, "USD") == []
