"""Reading a request's JSON strictly: sent as `application/json`, at most 64 KiB, nested at most 8
deep, an object with exactly the fields expected (no unknown ones, none twice), each of its type;
amounts are decimal strings, never JSON numbers; an optional field sent as null is left out.
Anything else is a 4xx Problem before any service is called."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from mwallet.core.errors import quoted
from mwallet.server.problems import Problem

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024
MAX_DEPTH = 8


async def json_object(
    request: Request,
    *,
    required: dict[str, type],
    optional: dict[str, type] | None = None,
    allow_empty: bool = False,
) -> dict[str, Any]:
    """`allow_empty`: no body at all reads as `{}` (an action whose fields are all optional)."""
    raw = await _raw(request)
    if allow_empty and not raw.strip():
        return {}
    kind = media_type(request)
    if not _is_json(kind):
        raise Problem(415, "unsupported_media_type",
                      f"send the body as application/json, not {quoted(kind)}")  # fmt: skip
    try:
        document = json.loads(
            raw, parse_float=_no_float, parse_constant=_no_float, object_pairs_hook=_no_repeats
        )
    except _FieldRepeated as exc:
        raise Problem(
            400, "duplicate_fields", f"{quoted(exc.args[0])} is sent more than once"
        ) from None
    except _FloatRefused:
        raise Problem(422, "float_amount", "numbers with a fraction are refused: send amounts "
                      'as decimal strings, like "12.50"') from None  # fmt: skip
    except (ValueError, RecursionError):
        raise Problem(400, "bad_json", "the body is not valid JSON") from None
    if _depth(document) > MAX_DEPTH:
        raise Problem(400, "too_deep", f"JSON nested more than {MAX_DEPTH} levels")
    if not isinstance(document, dict):
        raise Problem(400, "bad_json", "the body must be a JSON object")
    # An optional field sent as null is absent: handlers read `body.get(name, default)`.
    checked = _checked(document, required, optional or {})
    return {name: value for name, value in checked.items() if value is not None}


async def form_or_json(
    request: Request, *, required: set[str], optional: set[str] | None = None
) -> dict[str, str]:
    """Text fields as a form (`application/x-www-form-urlencoded`, as RFC 6749 sends them) or as
    a JSON object; each field at most once, unknown or missing ones refused."""
    expected: dict[str, type] = dict.fromkeys(required, str)
    allowed: dict[str, type] = dict.fromkeys(optional or set(), str)
    kind = media_type(request)
    if kind != FORM:
        if not _is_json(kind):
            raise Problem(415, "unsupported_media_type", f"send the body as a form ({FORM}) "
                          f"or as application/json, not {quoted(kind)}")  # fmt: skip
        return await json_object(request, required=expected, optional=allowed)
    raw = await _raw(request)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw),
                          errors="strict")  # fmt: skip
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "bad_form", "the body is not a valid form") from None
    form = dict(pairs)
    if len(form) != len(pairs):
        raise Problem(400, "bad_form", "a form field was sent more than once")
    return _checked(form, expected, allowed)


async def _raw(request: Request) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise Problem(413, "body_too_large", f"a request body is at most {MAX_BODY} bytes")
    return bytes(raw)


# What a field's Python type is called in JSON, for the one line a client reads.
_JSON_TYPES: dict[type, str] = {
    str: "a string",
    bool: "true or false",
    int: "a whole number",
    dict: "an object",
    list: "an array",
}


def _checked(
    document: dict[str, Any], required: dict[str, type], optional: dict[str, type]
) -> dict[str, Any]:
    allowed = {**required, **optional}
    unknown = sorted(set(document) - set(allowed))
    if unknown:
        raise Problem(400, "unknown_fields", f"unknown field(s): {', '.join(unknown)}")
    missing = sorted(set(required) - set(document))
    if missing:
        raise Problem(400, "missing_fields", f"missing field(s): {', '.join(missing)}")
    for name, value in document.items():
        expected = allowed[name]
        if value is None and name not in required:
            continue
        if type(value) is not expected:  # bool is not int, int is not str
            wanted = _JSON_TYPES.get(expected, f"a {expected.__name__}")
            raise Problem(400, "wrong_type", f"{name} must be {wanted}")
    return document


def media_type(request: Request) -> str:
    """What the request's body is labelled (`Content-Type` without its parameters), "" if not."""
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


def _is_json(kind: str) -> bool:
    """Whether a body labelled `kind` is read as JSON. A body labelled as something else is
    refused rather than guessed at: a form or a text that happens to parse is not what the
    client meant to send. No label at all is taken as JSON (some HTTP tools send none)."""
    return not kind or kind == "application/json" or kind.endswith("+json")


class _FloatRefused(ValueError):
    pass


class _FieldRepeated(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose field appears twice is ambiguous (which amount was meant?): refused."""
    document: dict[str, Any] = {}
    for name, value in pairs:
        if name in document:
            raise _FieldRepeated(name)
        document[name] = value
    return document


def _no_float(text: str) -> Any:
    raise _FloatRefused(text)


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level)
    return level
