"""What the customer gave the terminal: a typed code, a scanned QR payload, or a QR image.

A keyboard-wedge scanner "types" the payload and Enter into the same field as a typed code, so
one reader tells them apart: a payload starts with `MW1:`, a code is ten digits (spaces and
dashes allowed). An image (a photo or a saved PNG) is decoded with zxing-cpp.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mwallet.core.domain.withdrawals import parse_code
from mwallet.core.errors import InvalidInput
from mwallet.core.withdrawal_qr import InvalidQr, looks_like_payload


@dataclass(frozen=True, slots=True)
class TypedCode:
    code: str


@dataclass(frozen=True, slots=True)
class ScannedQr:
    payload: str


Entry = TypedCode | ScannedQr


def read_entry(text: str) -> Entry:
    """A typed code or a scanned payload; InvalidInput for anything else."""
    cleaned = text.strip()
    if not cleaned:
        raise InvalidInput("type the withdrawal code or scan its QR code")
    if looks_like_payload(cleaned):
        return ScannedQr(cleaned)
    return TypedCode(parse_code(cleaned))


def read_qr_image(path: Path) -> ScannedQr:
    """The withdrawal payload in a QR image (PNG, JPEG…), however scaled or turned."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            found = zxingcpp.read_barcodes(image.convert("L"))
    except (FileNotFoundError, IsADirectoryError):
        raise InvalidInput(f"no image at {path}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInput(f"{path} is not an image: {exc}") from None
    payloads = [barcode.text for barcode in found if looks_like_payload(barcode.text)]
    if not payloads:
        raise InvalidQr("no withdrawal QR code in that image")
    return ScannedQr(payloads[0].strip())
