"""The OpenAPI 3.1 description of the HTTP services, written as data (no generator, no dependency):
every endpoint, its request and response schemas, the Bearer security scheme, problem+json errors.
`document(services)` keeps the paths of the services a process serves; `GET /openapi.json`.

Amounts are decimal strings everywhere; times are RFC 3339 UTC (`2026-01-15T09:30:00Z`). The
tests validate real responses of every endpoint against this document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

Schema = dict[str, Any]

PROBLEM_TYPE = "application/problem+json"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "properties": {**required, **(optional or {})},
        "required": sorted(required),
        "additionalProperties": False,
    }


STRING: Schema = {"type": "string"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
AMOUNT: Schema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "examples": ["12.50"]}
NULLABLE_AMOUNT: Schema = {"type": ["string", "null"], "pattern": r"^[0-9]+(\.[0-9]+)?$"}
AMOUNT_IN: Schema = {"type": "string", "description": "a decimal string, like \"12.50\"",
                     "examples": ["12.50"]}  # fmt: skip
CURRENCY: Schema = {"type": "string", "pattern": "^[A-Z]{3}$"}
TIME: Schema = {"type": "string", "format": "date-time", "pattern": "Z$"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
ID: Schema = {"type": "string", "minLength": 1}
CODE_IN: Schema = {"type": "string", "description": "a TOTP or recovery code (step-up)"}
DEVICE_ID: Schema = {
    "type": "string",
    "description": "an id the client keeps for the device it "
    "runs on: a login from a device new to the person is a security notice "
    "to them (with the device grant: on the poll that gets the tokens)",
}
SIGNED_AMOUNT: Schema = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
                         "examples": ["-12.50"]}  # fmt: skip
DAY: Schema = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
COUNT: Schema = {"type": "integer", "minimum": 0}
PHONE: Schema = {"type": "string", "pattern": r"^\+[0-9]+$"}
MOVEMENTS = ["transfer", "withdrawal-atm", "withdrawal-agent", "bill", "airtime", "topup"]
MOVEMENT_TYPES = ["transfer_in", "transfer_out", "topup", "bill", "airtime", "withdrawal",
                  "cash_in", "cash_out", "fee", "reversal"]  # fmt: skip

_WITHDRAWAL: dict[str, Schema] = {
    "withdrawal_id": ID, "amount": AMOUNT, "fee": AMOUNT, "currency": CURRENCY,
    "channel": {"enum": ["atm", "agent"]},
    "state": {"enum": ["pending", "authorized", "dispensing", "completed", "cancelled",
                       "expired", "blocked", "reversed"]},
    "created_at": TIME, "expires_at": TIME, "terminal_id": NULLABLE_STRING,
}  # fmt: skip

_MOVEMENT: dict[str, Schema] = {
    "id": ID, "type": {"enum": MOVEMENT_TYPES}, "created_at": TIME, "amount": SIGNED_AMOUNT,
    "balance_after": AMOUNT, "counterparty": NULLABLE_STRING, "note": NULLABLE_STRING,
    "state": STRING,
}  # fmt: skip
_TALLY = _object({"count": COUNT, "amount": AMOUNT, "fees": AMOUNT, "average": AMOUNT})
_CATEGORIES: Schema = {"type": "object", "additionalProperties": _TALLY}
_USAGE_HEAD: dict[str, Schema] = {
    "user": _object({"phone": PHONE, "name": STRING}), "currency": CURRENCY,
    "period": {"enum": ["month", "week"]}, "from": TIME,
    "until": {**TIME, "description": "the end of the window, excluded"}, "generated_at": TIME,
}  # fmt: skip
_PRODUCT_ROW = {"product": STRING, "currency": CURRENCY, "count": COUNT}
_PER_CURRENCY: Schema = {"type": "object", "propertyNames": CURRENCY,
                         "additionalProperties": AMOUNT}  # fmt: skip

# The reports service: the same documents as `mwallet history|statement|report|admin report
# --json` (`mwallet.render`).
REPORT_SCHEMAS: dict[str, Schema] = {
    "MovementPage": _object({
        "user": {**PHONE, "description": "the wallet's phone number"},
        "movements": {"type": "array", "items": _object({
            **_MOVEMENT, "currency": CURRENCY,
            "cursor": {"type": "string", "description": "this line's place in the history"},
        })},
        "next_cursor": {"type": ["string", "null"],
                        "description": "the next page's `cursor`; null on the last page"},
    }),
    "Statement": _object({
        "user": PHONE, "currency": CURRENCY, "from": NULLABLE_TIME,
        "to": {**NULLABLE_TIME, "description": "the end of the period, excluded"},
        "opening_balance": AMOUNT,
        "movements": {"type": "array", "items": _object(_MOVEMENT), "description": "oldest first"},
        "count": COUNT, "total_in": AMOUNT, "total_out": AMOUNT, "total_fees": AMOUNT,
        "closing_balance": AMOUNT,
    }),
    "UsageStats": _object({
        **_USAGE_HEAD, "balance": AMOUNT,
        "in": _object({"total": _TALLY, "categories": _CATEGORIES}),
        "out": _object({"total": _TALLY, "categories": _CATEGORIES}),
        "held": {**_TALLY, "description": "withdrawals and payments not settled yet"},
        "counterparties": {"type": "array", "items": _object({
            "phone": PHONE, "name": STRING, "count": COUNT, "sent": AMOUNT, "received": AMOUNT,
        })},
        "billers": {"type": "array", "items": _object({
            "biller_id": ID, "name": STRING, "category": STRING, "count": COUNT,
            "amount": AMOUNT, "fees": AMOUNT,
        })},
    }),
    "UsageTrends": _object({
        **_USAGE_HEAD,
        "periods": {"type": "array", "items": _object({
            "period": {"type": "string", "description": "a month (2026-03) or a week's Monday"},
            "in": _TALLY, "out": _TALLY, "held": _TALLY,
            "out_change_percent": {"type": ["number", "null"], "description":
                                   "money out against the period before (a ratio, not money)"},
            "out_categories": _CATEGORIES, "in_categories": _CATEGORIES,
        })},
    }),
    "VolumeReport": _object({
        "from": DAY, "to": DAY,
        "rows": {"type": "array", "items": _object({
            "day": DAY, **_PRODUCT_ROW, "volume": AMOUNT, "fees": AMOUNT})},
        "totals": {"type": "array", "items": _object({
            **_PRODUCT_ROW, "volume": AMOUNT, "fees": AMOUNT})},
    }),
    "ActiveUsers": _object({
        "from": DAY, "to": DAY,
        "days": {"type": "array", "items": _object({"day": DAY, "active_users": COUNT})},
        "active_in_window": COUNT, "wallets": COUNT,
    }),
    "FeesReport": _object({
        "from": DAY, "to": DAY,
        "rows": {"type": "array", "items": _object({
            "day": DAY, **_PRODUCT_ROW, "volume": AMOUNT, "fees": AMOUNT})},
        "totals": {"type": "array", "items": _object({
            **_PRODUCT_ROW, "volume": AMOUNT, "fees": AMOUNT})},
        "fees_accounts": _PER_CURRENCY,
    }),
    "CashReport": _object({
        "from": DAY, "to": DAY,
        "terminals": {"type": "array", "items": _object({
            "terminal_id": ID, "kind": {"enum": ["atm", "agent"]}, "name": STRING,
            "agent_phone": {"type": ["string", "null"]}, "currency": CURRENCY,
            "paid_out_count": COUNT, "paid_out": AMOUNT, "cash_in_count": COUNT,
            "cash_in": AMOUNT, "account_balance": AMOUNT,
            "cassette_cash": {"anyOf": [AMOUNT, {"type": "null"}]},
        })},
    }),
    "HoldsReport": _object({
        "holds": {"type": "array", "items": _object({
            "kind": {"enum": ["withdrawal", "bill", "airtime"]}, "id": ID, "phone": STRING,
            "currency": CURRENCY, "held": AMOUNT, "state": STRING, "created_at": TIME,
        }), "description": "the oldest first, at most `limit`"},
        "count": COUNT, "held": _PER_CURRENCY, "holds_accounts": _PER_CURRENCY,
        "matches": {"type": "boolean"},
    }),
    "TrialBalance": _object({
        "at": TIME,
        "accounts": {"type": "array", "items": _object({
            "code": STRING, "kind": STRING, "currency": CURRENCY, "status": STRING,
            "balance": SIGNED_AMOUNT,
        })},
        "by_kind": {"type": "array", "items": _object({
            "currency": CURRENCY, "kind": STRING, "accounts": COUNT, "balance": SIGNED_AMOUNT,
        })},
        "totals": {"type": "object", "propertyNames": CURRENCY,
                   "additionalProperties": SIGNED_AMOUNT,
                   "description": "per currency: zero, by double entry"},
        "balanced": {"type": "boolean"}, "matches_postings": {"type": "boolean"},
        "problems": {"type": "array", "items": STRING},
        "warnings": {"type": "array", "items": STRING,
                     "description": "not wrong with the books, but for a person to look at"},
        "verified": {**_object({"accounts": COUNT, "entries": COUNT, "postings": COUNT}),
                     "description": "what the proof from the postings went through"},
    }),
}  # fmt: skip

SCHEMAS: dict[str, Schema] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `type` ends with a stable error code",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": STRING,
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": STRING,
            "error": {"type": "string", "description": "RFC 6749 error code (/oauth/token)"},
        },
        "required": ["type", "title", "status", "detail"],
        "additionalProperties": True,
    },
    "Health": _object({"status": {"const": "ok"}}),
    "WalletStatus": _object({"status": {"enum": ["active", "frozen", "closed"]}}),
    # `region`: the default region of phone numbers typed without +country (null: none set).
    "Ready": _object({
        "status": {"const": "ready"}, "currency": CURRENCY,
        "region": {"type": ["string", "null"], "pattern": "^[A-Z]{2}$"},
    }),
    "Registered": _ref("User"),
    "User": _object({
        "user_id": ID, "phone": PHONE, "display_name": STRING, "email": NULLABLE_STRING,
        "role": STRING, "tier": {"enum": ["basic", "verified"]}, "created_at": TIME,
    }),
    "Me": _object({
        "user_id": ID, "phone": STRING, "display_name": STRING, "role": STRING,
        "scopes": {"type": "array", "items": STRING},
    }),
    "Tokens": _object({
        "token_type": {"const": "Bearer"}, "access_token": STRING,
        "access_expires_at": TIME, "refresh_token": NULLABLE_STRING,
        "refresh_expires_at": NULLABLE_TIME,
    }),
    "LoginResult": _object({
        "user_id": ID, "token_type": {"const": "Bearer"}, "access_token": STRING,
        "access_expires_at": TIME, "refresh_token": NULLABLE_STRING,
        "refresh_expires_at": NULLABLE_TIME,
    }),
    "OAuthToken": _object({
        "token_type": {"const": "Bearer"}, "access_token": STRING,
        "access_expires_at": TIME, "refresh_token": NULLABLE_STRING,
        "refresh_expires_at": NULLABLE_TIME,
        "expires_in": {"type": "integer", "minimum": 0},
    }),
    "Jwks": {
        "type": "object",
        "properties": {"keys": {"type": "array", "items": {"type": "object"}}},
        "required": ["keys"],
    },
    "TwoFactorStatus": _object({
        "enabled": {"type": "boolean"}, "pending": {"type": "boolean"},
        "recovery_codes_left": {"type": "integer", "minimum": 0},
        "step_up_amount": AMOUNT,
    }),
    "TwoFactorBegun": _object({
        "otpauth_uri": {"type": "string", "pattern": "^otpauth://totp/"}, "secret": STRING,
    }),
    "RecoveryCodes": _object({
        "enabled": {"const": True}, "recovery_codes": {"type": "array", "items": STRING},
    }),
    "Balance": _object({
        "user_id": ID, "currency": CURRENCY, "balance": AMOUNT, "available": AMOUNT,
    }),
    "Transfer": _object({
        "transfer_id": ID, "from": STRING, "to": STRING, "amount": AMOUNT, "fee": AMOUNT,
        "currency": CURRENCY, "note": NULLABLE_STRING, "created_at": TIME,
    }),
    "TopUp": _object({
        "topup_id": ID, "source": STRING, "amount": AMOUNT, "currency": CURRENCY,
        "created_at": TIME,
    }),
    "Payment": _object({
        "payment_id": ID, "product": STRING, "biller": STRING, "reference": STRING,
        "amount": AMOUNT, "fee": AMOUNT, "currency": CURRENCY,
        "state": {"enum": ["pending", "unknown", "succeeded", "failed"]},
        "provider_ref": NULLABLE_STRING, "reason": NULLABLE_STRING,
        "created_at": TIME, "updated_at": TIME,
    }),
    "PaymentList": _object({"payments": {"type": "array", "items": _ref("Payment")}}),
    "Biller": _object({
        "id": ID, "name": STRING, "category": STRING, "currency": CURRENCY, "min": AMOUNT,
        "max": AMOUNT, "reference_pattern": STRING,
        "check_digit": {"enum": ["none", "luhn", "mod97"]}, "provider": STRING,
        "active": {"type": "boolean"},
    }),
    "BillerList": _object({"billers": {"type": "array", "items": _ref("Biller")}}),
    "PaymentDetail": _object({"payment": _ref("Payment"), "biller": _ref("Biller")}),
    "Allowance": _object({
        "period": {"enum": ["daily", "monthly"]}, "limit": NULLABLE_AMOUNT, "used": AMOUNT,
        "left": NULLABLE_AMOUNT,
    }),
    "Quote": _object({
        "movement": STRING, "amount": AMOUNT, "fee": AMOUNT, "total": AMOUNT,
        "currency": CURRENCY, "tier": {"enum": ["basic", "verified"]},
        "within_limits": {"type": "boolean"},
        "limits": {"type": "array", "items": _ref("Allowance")},
    }),
    "Limits": _object({
        "tier": {"enum": ["basic", "verified"]}, "currency": CURRENCY,
        "limits": {"type": "object",
                   "additionalProperties": {"type": "array", "items": _ref("Allowance")}},
    }),
    "Tariff": _object({
        "bands": {"type": "array", "minItems": 1, "items": _object({
            "up_to": NULLABLE_AMOUNT, "flat": AMOUNT,
            "percent": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$",
                        "examples": ["1.5"]},
        })},
        "min": AMOUNT, "max": NULLABLE_AMOUNT, "text": STRING,
    }),
    "Tariffs": _object({
        "currency": CURRENCY,
        "tariffs": _object({movement: {"anyOf": [_ref("Tariff"), {"type": "null"}]}
                            for movement in MOVEMENTS}),
    }),
    "Preferences": _object({
        "language": {"enum": ["en", "pt-MZ", "pt-BR"]}, "email": {"type": "boolean"},
        "sms": {"type": "boolean"}, "push": {"type": "boolean"},
    }),
    "DeviceAuthorization": _object({
        "device_code": STRING, "user_code": {"type": "string", "pattern": "^[A-Z]{4}-[A-Z]{4}$"},
        "verification_uri": {"type": "string", "format": "uri"},
        "verification_uri_complete": {"type": "string", "format": "uri"},
        "expires_in": {"type": "integer", "minimum": 0},
        "interval": {"type": "integer", "minimum": 1},
    }),
    "CallbackResult": _object({"payment_id": ID, "settled": {"type": "boolean"}}),
    "Withdrawal": _object(_WITHDRAWAL),
    "IssuedWithdrawal": _object({
        **_WITHDRAWAL,
        "code": {"type": ["string", "null"], "pattern": "^[0-9]{10}$",
                 "description": "shown once: null when the request is replayed"},
        "pin": {"type": ["string", "null"], "pattern": "^[0-9]{4}$"},
        "qr_payload": {"type": ["string", "null"], "pattern": "^MW1:"},
    }),
    "Redemption": _object({
        **_WITHDRAWAL,
        "customer_name": STRING,
        "notes": {
            "type": ["array", "null"],
            "description": "the notes an ATM dispenses; null at an agent",
            "items": _object({"denomination": AMOUNT, "count": {"type": "integer",
                                                                "minimum": 1}}),
        },
    }),
    "WithdrawalList": _object({"withdrawals": {"type": "array", "items": _ref("Withdrawal")}}),
    "Notification": _object({
        "notification_id": ID, "event_id": ID, "channel": STRING, "kind": STRING,
        "to": STRING, "title": STRING, "body": STRING, "state": STRING,
        "attempts": {"type": "integer", "minimum": 0}, "created_at": TIME,
        "sent_at": NULLABLE_TIME, "read_at": NULLABLE_TIME, "last_error": NULLABLE_STRING,
    }),
    "NotificationList": _object(
        {"notifications": {"type": "array", "items": _ref("Notification")}}
    ),
    **REPORT_SCHEMAS,
}  # fmt: skip


def _request(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    """A request body's object: an optional field may also be sent as null (taken as absent)."""
    nullable = {name: {"anyOf": [schema, {"type": "null"}]}
                for name, schema in (optional or {}).items()}  # fmt: skip
    return _object(required, nullable)


# Request bodies: exactly these fields (unknown ones are refused), amounts as strings.
BODIES: dict[str, Schema] = {
    "Register": _request({"phone": STRING, "name": STRING, "password": STRING},
                        {"email": STRING}),
    "Login": _request({"phone": STRING, "password": STRING},
                      {"code": CODE_IN, "device_id": DEVICE_ID}),
    "RefreshToken": _request({"refresh_token": STRING}),
    "TokenRequest": _request(
        {"grant_type": {"enum": ["client_credentials", "refresh_token",
                                 "urn:ietf:params:oauth:grant-type:device_code"]}},
        {"client_id": STRING, "client_secret": STRING, "scope": STRING,
         "refresh_token": STRING, "device_code": STRING, "device_id": DEVICE_ID},
    ),
    "DeviceAuthorizationRequest": _request({"client_id": STRING}, {"scope": STRING}),
    "DeviceDecision": _request(
        {"user_code": STRING, "phone": STRING, "password": STRING},
        {"code": CODE_IN, "action": {"enum": ["approve", "deny"]}},
    ),
    "Code": _request({"code": CODE_IN}),
    "PasswordChange": _request({"current": STRING, "new": STRING}),
    "RoleChange": _request({"phone": STRING, "role": {
        "type": "string", "description": "customer, agent, admin or auditor"}}),
    "TierChange": _request({"phone": STRING, "tier": {
        "type": "string", "description": "basic or verified"}}),
    "WalletStatusChange": _request({"phone": STRING, "status": {
        "enum": ["active", "frozen", "closed"]}}),
    "CardTopUpRequest": _request({"source": STRING, "amount": AMOUNT_IN},
                                {"reference": {"type": "string",
                                               "description": "the card number"}}),
    "Empty": _request({}),
    "Reversal": _request({}, {"none_presented": {
        "type": "boolean", "default": False,
        "description": "after dispense: the dispenser presented no note (its word alone)"}}),
    "PreferencesRequest": _request({}, {
        "language": {"type": "string", "description": "en, pt-MZ or pt-BR"},
        "email": {"type": "boolean"}, "sms": {"type": "boolean"}, "push": {"type": "boolean"},
    }),
    "TransferRequest": _request({"to": STRING, "amount": AMOUNT_IN},
                               {"note": STRING, "code": CODE_IN}),
    "TopUpRequest": _request({"amount": AMOUNT_IN}, {"source": {"enum": ["sandbox"]}}),
    "BillRequest": _request({"biller": STRING, "reference": STRING, "amount": AMOUNT_IN},
                           {"code": CODE_IN}),
    "AirtimeRequest": _request({"amount": AMOUNT_IN}, {"phone": STRING, "code": CODE_IN}),
    "WithdrawalRequest": _request(
        {"amount": AMOUNT_IN},
        {"channel": {"enum": ["atm", "agent"]},
         "pin": {"type": "string", "description": "4 digits you choose; drawn if absent"},
         "code": CODE_IN},
    ),
    "RedeemRequest": _request(
        {"pin": STRING},
        {"code": {"type": "string", "description": "the 10-digit code (or send qr)"},
         "qr": {"type": "string", "description": "the scanned MW1: payload (or send code)"}},
    ),
}  # fmt: skip

PROBLEMS = {
    "400": "the request is malformed: bad JSON, unknown or missing fields, a bad value",
    "401": "no valid access token (or wrong credentials, second factor needed)",
    "403": "the caller may not do this",
    "404": "not found",
    "409": "refused in this state (or an Idempotency-Key still in flight)",
    "413": "the body is over 64 KiB",
    "422": "an amount refused (a JSON float, out of range, insufficient funds) or an "
    "Idempotency-Key reused with another body",
    "415": "not the form this endpoint takes",
    "429": "too many requests (Retry-After says when to retry) or a locked account",
    "503": "the database is unavailable or too busy: retry (Retry-After)",
}


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _problems(*statuses: str) -> dict[str, Schema]:
    shown = {
        status: {"description": PROBLEMS[status],
                 "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}
        for status in statuses
    }  # fmt: skip
    shown["default"] = {"description": "any other error, as a problem",
                        "content": {PROBLEM_TYPE: {"schema": _ref("Problem")}}}  # fmt: skip
    return shown


def _body(name: str, *, optional: bool = False, form: bool = False) -> Schema:
    content: Schema = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
    if form:
        content["application/x-www-form-urlencoded"] = content["application/json"]
    return {"required": not optional, "content": content}


IDEMPOTENCY_KEY: Schema = {
    "name": "Idempotency-Key", "in": "header", "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    "description": "yours alone: the same key and body return the original answer (a refusal "
    "by the books, such as insufficient_funds, included); another body 422; while the first is "
    "still running 409",
}  # fmt: skip


# The ids the wallet makes are ULIDs. `/payments/{payment_id}` says so, so that `/payments/billers`
# (another operation) is not also a payment id in the document.
ULID: Schema = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"}


def _path(name: str, schema: Schema = ID) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema}


LIMIT: Schema = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
}
BEARER: list[Schema] = [{"bearer": []}]
PUBLIC: list[Schema] = []


def _op(
    service: str,
    summary: str,
    responses: dict[str, Schema],
    *,
    problems: Iterable[str] = ("400", "401"),
    body: Schema | None = None,
    raw_body: bool = False,
    params: list[Schema] | None = None,
    security: list[Schema] = BEARER,
) -> Schema:
    """One operation. A body is read strictly (`server/body.py`: over 64 KiB is a 413, labelled
    other than what it takes a 415) unless `raw_body` (read as bytes, its label not looked at);
    behind a token, a malformed request is a 400 (a GET's query parameter it does not take, by
    `strict_query`; a body's bad field)."""
    if body is not None:
        problems = (*problems, "413", *(() if raw_body else ("415",)))
    if security is not PUBLIC:
        problems = (*problems, "400")
    operation: Schema = {
        "tags": [service],
        "summary": summary,
        "security": security,
        "responses": {**responses, **_problems(*sorted(set(problems)))},
    }
    if body is not None:
        operation["requestBody"] = body
    if params:
        operation["parameters"] = params
    return operation


NO_CONTENT: Schema = {"description": "done"}
HTML: Schema = {"description": "a page", "content": {"text/html": {"schema": STRING}}}
MOVING = ("400", "401", "403", "409", "413", "422", "503")
PAYMENT = {
    "201": _json(_ref("Payment"), "paid"),
    "202": _json(_ref("Payment"), "accepted, the provider's answer not known yet"),
    "422": {"description": "declined by the provider (a Payment), or refused (a problem)",
            "content": {"application/json": {"schema": _ref("Payment")},
                        PROBLEM_TYPE: {"schema": _ref("Problem")}}},
}  # fmt: skip


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


# A posting's time in microseconds (from 2001 on: `Cursor.to_continue`) and the line's part.
CURSOR: Schema = {
    "type": "string",
    "pattern": r"^[1-9][0-9]{15,17}\.[01]$",
    "examples": ["1768469400000000.0"],
}
DATE_IN: Schema = {"type": "string", "format": "date", "examples": ["2026-01-31"]}
FROM = _query("from", DATE_IN, "from this day on (UTC, included)")
TO = _query("to", DATE_IN, "up to this day (UTC, included)")
FORMAT = _query(
    "format",
    {"enum": ["json", "csv"]},
    "json (the default) or csv; without it, `Accept: text/csv` asks for CSV",
)
WHOSE = {**_path("user_id"), "description": "yours; anyone's for admins and auditors"}
READING = ("400", "401", "403", "404", "503")
CSV_CONTENT: Schema = {"text/csv": {"schema": {"type": "string"}}}
USAGE_PARAMS = [
    _query("period", {"enum": ["month", "week"], "default": "month"}, "sum per month or week"),
    _query("months", {"type": "integer", "minimum": 1, "maximum": 36, "default": 6},
           "calendar months back, this one included"),
]  # fmt: skip


def _days(default: int) -> Schema:
    return _query("days", {"type": "integer", "minimum": 1, "maximum": 366, "default": default},
                  "days back, today (UTC) included")  # fmt: skip


REPORT_PATHS: dict[str, dict[str, Schema]] = {
    "/reports/transactions/{user_id}": {"get": _op(
        "reports", "a wallet's movements, newest first, a page at a time (mwallet history)",
        {"200": {"description": "a page; CSV carries the next page's cursor in X-Next-Cursor",
                 "headers": {"X-Next-Cursor": {"schema": STRING, "description":
                                               "CSV only: the next page's cursor"}},
                 "content": {"application/json": {"schema": _ref("MovementPage")},
                             **CSV_CONTENT}}},
        problems=READING,
        params=[
            WHOSE, {**LIMIT, "description": "movements per page"},
            _query("cursor", CURSOR, "the previous page's `next_cursor`"), FROM, TO,
            {**_query("type", {"type": "array", "items": {"enum": MOVEMENT_TYPES}},
                      "only these types (repeat the parameter, or separate with commas)"),
             "style": "form", "explode": True},
            _query("counterparty", STRING, "only with this phone number, biller or source"),
            _query("min", AMOUNT, "only movements of at least this size (a decimal string)"),
            _query("max", AMOUNT, "only movements of at most this size (a decimal string)"),
            FORMAT,
        ],
    )},
    "/reports/statement/{user_id}": {"get": _op(
        "reports", "a statement of a period: opening balance, every movement (oldest first), "
        "totals, closing balance; streamed (mwallet statement)",
        {"200": {"description": "the statement; CSV: opening_balance, the movements, total_in, "
                 "total_out and closing_balance rows",
                 "headers": {"X-Statement-Postings": {
                     "schema": {"type": "string", "pattern": "^[0-9]+$"},
                     "description": "with ?count=true: how many postings the statement holds "
                     "(each a line, and its fee's line), for a progress bar"}},
                 "content": {"application/json": {"schema": _ref("Statement")},
                             **CSV_CONTENT}}},
        problems=READING,
        params=[WHOSE, FROM, TO, FORMAT,
                {"name": "count", "in": "query", "required": False,
                 "schema": {"type": "boolean", "default": False},
                 "description": "count the postings first and say how many in "
                 "X-Statement-Postings (one more query)"}],
    )},
    "/reports/stats/{user_id}": {"get": _op(
        "reports", "usage statistics: money in, out and held per category, counterparties, "
        "billers (mwallet report stats)", {"200": _json(_ref("UsageStats"))},
        problems=READING, params=[WHOSE, *USAGE_PARAMS],
    )},
    "/reports/trends/{user_id}": {"get": _op(
        "reports", "money in and out per period and category, with the change in money out "
        "(mwallet report trends)", {"200": _json(_ref("UsageTrends"))},
        problems=READING, params=[WHOSE, *USAGE_PARAMS],
    )},
    "/admin/reports/volumes": {"get": _op(
        "reports", "movements settled per product and day: count, volume, fees (admins, "
        "auditors)", {"200": _json(_ref("VolumeReport"))},
        problems=("400", "401", "403", "503"), params=[_days(7)],
    )},
    "/admin/reports/active": {"get": _op(
        "reports", "wallets that moved money, per day and over the window (admins, auditors)",
        {"200": _json(_ref("ActiveUsers"))}, problems=("400", "401", "403", "503"),
        params=[_days(7)],
    )},
    "/admin/reports/fees": {"get": _op(
        "reports", "fees earned per product and day, and the fees accounts (admins, auditors)",
        {"200": _json(_ref("FeesReport"))}, problems=("400", "401", "403", "503"),
        params=[_days(30)],
    )},
    "/admin/reports/cash": {"get": _op(
        "reports", "per ATM and agent: cash paid out and taken in, floats, cassettes (admins, "
        "auditors)", {"200": _json(_ref("CashReport"))},
        problems=("400", "401", "403", "503"), params=[_days(1)],
    )},
    "/admin/reports/holds": {"get": _op(
        "reports", "money held now, checked against the holds accounts (admins, auditors)",
        {"200": _json(_ref("HoldsReport"))}, problems=("400", "401", "403", "503"),
        params=[{**LIMIT, "schema": {**LIMIT["schema"], "default": 100},
                 "description": "list at most this many, oldest first"}],
    )},
    "/admin/reports/trial-balance": {"get": _op(
        "reports", "every account's balance, the sum per currency and whether the postings "
        "prove them (admins, auditors); unsound books still answer 200, with `balanced` or "
        "`matches_postings` false", {"200": _json(_ref("TrialBalance"))},
        problems=("401", "403", "503"),
    )},
}  # fmt: skip

PATHS: dict[str, dict[str, Schema]] = {
    "/healthz": {"get": _op("health", "the process is up", {"200": _json(_ref("Health"))},
                            problems=(), security=PUBLIC)},
    "/readyz": {"get": _op(
        "health", "the database answers and access tokens can be verified: a process started "
        "with --auth-url holds the auth service's published keys (503 `keys_unavailable` until "
        "it has fetched them once)",
        {"200": _json(_ref("Ready"))}, problems=("503",), security=PUBLIC,
    )},
    "/openapi.json": {"get": _op("health", "this document", {"200": _json({"type": "object"})},
                                 problems=(), security=PUBLIC)},
    "/metrics": {"get": _op(
        "health", "Prometheus metrics of this process (text format 0.0.4)",
        {"200": {"description": "OK",
                 "content": {"text/plain": {"schema": {"type": "string"}}}}},
        problems=(), security=PUBLIC,
    )},
    "/auth/register": {"post": _op(
        "auth", "register a person", {"201": _json(_ref("Registered"), "registered")},
        problems=("400", "409", "413"), body=_body("Register"), security=PUBLIC,
        params=[{**IDEMPOTENCY_KEY, "required": False}],
    )},
    "/auth/login": {"post": _op(
        "auth", "log in (rate limited)", {"200": _json(_ref("LoginResult"))},
        problems=("400", "401", "429"), body=_body("Login"), security=PUBLIC,
    )},
    "/auth/refresh": {"post": _op(
        "auth", "rotate a refresh token", {"200": _json(_ref("Tokens"))},
        body=_body("RefreshToken"), security=PUBLIC,
    )},
    "/auth/logout": {"post": _op(
        "auth", "end a session", {"204": NO_CONTENT}, body=_body("RefreshToken"),
        problems=("400",), security=PUBLIC,
    )},
    "/auth/me": {"get": _op(
        "auth", "who the access token belongs to", {"200": _json(_ref("Me"))},
        problems=("401",),
    )},
    "/admin/users/by-phone/{phone}": {"get": _op(
        "auth", "who a phone number belongs to (admins and auditors; anyone else is refused "
        "before the number is looked up); a number without +country is read in the "
        "instance's region", {"200": _json(_ref("User"))},
        problems=("400", "401", "403", "404"),
        params=[{**_path("phone"), "examples": {"e164": {"value": "+258841234567"}}}],
    )},
    "/admin/users/role": {"post": _op(
        "auth", "give a person a role (admins; anyone else is refused before the number is "
        "looked up; the last admin keeps theirs: 409)", {"200": _json(_ref("User"))},
        problems=("400", "401", "403", "404", "409", "413"), body=_body("RoleChange"),
    )},
    "/admin/users/tier": {"post": _op(
        "auth", "put a person in a KYC tier, which sets their limits (admins)",
        {"200": _json(_ref("User"))}, problems=("400", "401", "403", "404", "413"),
        body=_body("TierChange"),
    )},
    "/auth/password": {"post": _op(
        "auth", "change your password: every session ends", {"204": NO_CONTENT},
        problems=("400", "401", "413"), body=_body("PasswordChange"),
    )},
    "/.well-known/jwks.json": {"get": _op(
        "auth", "the public keys that verify access tokens", {"200": _json(_ref("Jwks"))},
        problems=(), security=PUBLIC,
    )},
    "/oauth/token": {"post": _op(
        "auth", "OAuth 2.0 token endpoint: client credentials or refresh (rate limited); "
        "errors carry RFC 6749's `error`", {"200": _json(_ref("OAuthToken"))},
        problems=("400", "401", "429"), body=_body("TokenRequest", form=True),
        security=[{}, {"client_basic": []}],
    )},
    "/oauth/device_authorization": {"post": _op(
        "auth", "RFC 8628: a device asks to log in; poll /oauth/token with its device_code "
        "while the person approves at verification_uri (rate limited)",
        {"200": _json(_ref("DeviceAuthorization"))}, problems=("400", "413", "429"),
        body=_body("DeviceAuthorizationRequest", form=True), security=PUBLIC,
    )},
    "/device": {
        "get": _op("auth", "the verification page: a form for the device's code",
                   {"200": HTML}, problems=("429",), security=PUBLIC,
                   params=[{"name": "user_code", "in": "query", "required": False,
                            "schema": STRING}]),
        "post": _op("auth", "approve or refuse a device with your phone and password "
                    "(rate limited); the answer is a page",
                    {"200": HTML, **{status: {"description": PROBLEMS[status], "content": {
                        "text/html": {"schema": STRING},
                        PROBLEM_TYPE: {"schema": _ref("Problem")}}}
                        for status in ("400", "401", "409", "429")}},
                    problems=("413", "415"), security=PUBLIC,
                    body={"required": True, "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": _ref("DeviceDecision")}}}),
    },
    "/auth/2fa": {
        "get": _op("auth", "two-factor status", {"200": _json(_ref("TwoFactorStatus"))}),
        "post": _op("auth", "begin two-factor enrolment",
                    {"201": _json(_ref("TwoFactorBegun"), "scan the otpauth URI")},
                    problems=("400", "401", "403", "409"),
                    body=_body("Empty", optional=True)),
    },
    "/auth/2fa/confirm": {"post": _op(
        "auth", "confirm enrolment with a code: the recovery codes",
        {"200": _json(_ref("RecoveryCodes"))}, problems=("400", "401", "409"),
        body=_body("Code"),
    )},
    "/auth/2fa/disable": {"post": _op(
        "auth", "turn two-factor off", {"204": NO_CONTENT}, problems=("400", "401", "409"),
        body=_body("Code"),
    )},
    "/wallet/{user_id}/balance": {"get": _op(
        "wallet", "your balance", {"200": _json(_ref("Balance"))},
        problems=("401", "403"), params=[_path("user_id")],
    )},
    "/wallet/{user_id}/transfer": {"post": _op(
        "wallet", "send money to a phone", {"201": _json(_ref("Transfer"), "sent")},
        problems=MOVING, body=_body("TransferRequest"),
        params=[_path("user_id"), IDEMPOTENCY_KEY],
    )},
    "/wallet/{user_id}/topup": {"post": _op(
        "wallet", "top up from the sandbox source", {"201": _json(_ref("TopUp"), "credited")},
        problems=MOVING, body=_body("TopUpRequest"),
        params=[_path("user_id"), IDEMPOTENCY_KEY],
    )},
    "/wallet/{user_id}/quote": {"get": _op(
        "wallet", "what a movement would cost, and what is left of your limits",
        {"200": _json(_ref("Quote"))}, problems=("400", "401", "403", "422"),
        params=[_path("user_id"),
                {"name": "movement", "in": "query", "required": True,
                 "schema": {"enum": MOVEMENTS}},
                {"name": "amount", "in": "query", "required": True, "schema": AMOUNT_IN}],
    )},
    "/wallet/{user_id}/limits": {"get": _op(
        "wallet", "your tier, and what you may still move today and this month",
        {"200": _json(_ref("Limits"))}, problems=("401", "403"), params=[_path("user_id")],
    )},
    "/wallet/{user_id}/tariffs": {"get": _op(
        "wallet", "the fee table: every movement's tariff (null: free)",
        {"200": _json(_ref("Tariffs"))}, problems=("400", "401", "403"),
        params=[_path("user_id")],
    )},
    "/admin/wallets/status": {"post": _op(
        "wallet", "freeze a wallet (no money in or out), unfreeze it, or close an empty one for "
        "good (admins)", {"200": _json(_ref("WalletStatus"))},
        problems=("400", "401", "403", "404", "409", "413"), body=_body("WalletStatusChange"),
    )},
    "/payments/billers": {"get": _op(
        "payments", "the billers you can pay", {"200": _json(_ref("BillerList"))},
        problems=("401",),
    )},
    "/payments": {"get": _op(
        "payments", "your payments, newest first", {"200": _json(_ref("PaymentList"))},
        problems=("400", "401"), params=[LIMIT],
    )},
    "/payments/card-topup": {"post": _op(
        "payments", "top up from a card or bank provider", PAYMENT, problems=MOVING[:-2],
        body=_body("CardTopUpRequest"), params=[IDEMPOTENCY_KEY],
    )},
    "/payments/bill": {"post": _op(
        "payments", "pay a bill", PAYMENT, problems=MOVING[:-2], body=_body("BillRequest"),
        params=[IDEMPOTENCY_KEY],
    )},
    "/payments/topup": {"post": _op(
        "payments", "buy airtime", PAYMENT, problems=MOVING[:-2], body=_body("AirtimeRequest"),
        params=[IDEMPOTENCY_KEY],
    )},
    "/payments/callback/{provider}": {"post": _op(
        "payments", "a provider's signed result for a payment",
        {"200": _json(_ref("CallbackResult"))}, problems=("400", "404", "413"),
        params=[_path("provider"),
                {"name": "X-Mwallet-Timestamp", "in": "header", "required": True,
                 "schema": STRING},
                {"name": "X-Mwallet-Signature", "in": "header", "required": True,
                 "schema": STRING}],
        body={"required": True, "content": {"application/json": {"schema": {
            "type": "object"}}}}, raw_body=True,
        security=PUBLIC,
    )},
    "/payments/{payment_id}": {"get": _op(
        "payments", "one of your payments, with its biller",
        {"200": _json(_ref("PaymentDetail"))}, problems=("401", "404"),
        params=[_path("payment_id", ULID)],
    )},
    "/atm/withdrawal-request": {"post": _op(
        "atm", "ask for a cash withdrawal: a hold, a code, a PIN and a QR payload",
        {"201": _json(_ref("IssuedWithdrawal"), "held; the secrets are shown once")},
        problems=MOVING, body=_body("WithdrawalRequest"), params=[IDEMPOTENCY_KEY],
    )},
    "/atm/validate-token": {"post": _op(
        "atm", "a terminal checks a code or QR and the PIN (rate limited)",
        {"200": _json(_ref("Redemption"), "authorized: pay out, then confirm")},
        problems=("400", "401", "403", "404", "409", "429"), body=_body("RedeemRequest"),
    )},
    "/atm/withdrawals": {"get": _op(
        "atm", "your withdrawals, newest first", {"200": _json(_ref("WithdrawalList"))},
        problems=("400", "401", "403"), params=[LIMIT],
    )},
    **{
        f"/atm/withdrawals/{{withdrawal_id}}/{action}": {"post": _op(
            "atm", summary, {"200": _json(_ref("Withdrawal"))},
            problems=("400", "401", "403", "404", "409"), body=_body(body, optional=True),
            params=[_path("withdrawal_id")],
        )}
        for action, summary, body in (
            ("dispense", "just before the notes are presented (an agent: the cash handed over):"
             " from now on only the dispenser's word reverses it", "Empty"),
            ("confirm", "the terminal paid the cash out", "Empty"),
            ("reverse", "the terminal could not pay out: the hold goes back (after dispense,"
             " only with none_presented)", "Reversal"),
            ("cancel", "you take a pending withdrawal back", "Empty"),
        )
    },
    "/notifications": {"get": _op(
        "notifications", "your inbox, newest first", {"200": _json(_ref("NotificationList"))},
        problems=("400", "401"),
        params=[LIMIT,
                {"name": "unread", "in": "query", "required": False,
                 "schema": {"type": "boolean", "default": False}},
                {"name": "before", "in": "query", "required": False, "schema": STRING,
                 "description": "the page after this notification id"}],
    )},
    "/notifications/preferences": {
        "get": _op(
            "notifications", "your notification preferences",
            {"200": _json(_ref("Preferences"))}, problems=("400", "401"),
        ),
        "put": _op(
            "notifications", "change the preferences given (the others stay)",
            {"200": _json(_ref("Preferences"))}, problems=("400", "401", "413", "422"),
            body=_body("PreferencesRequest"),
        ),
    },
    **REPORT_PATHS,
    "/notifications/{notification_id}/read": {"post": _op(
        "notifications", "mark one read", {"200": _json(_ref("Notification"))},
        problems=("400", "401", "404"), body=_body("Empty", optional=True),
        params=[_path("notification_id")],
    )},
}  # fmt: skip


def document(services: Iterable[str]) -> dict[str, Any]:
    """The description of the named services (and health), as `GET /openapi.json` serves it."""
    shown = {"health", *services}
    paths = {
        path: operations
        for path, operations in PATHS.items()
        if all(op["tags"][0] in shown for op in operations.values())
    }
    return copy.deepcopy({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "mwallet",
            "version": "1",
            "description": "A mobile wallet's HTTP services. Amounts are decimal strings; "
            "money-moving POSTs need an Idempotency-Key; errors are application/problem+json.",
        },
        "tags": [{"name": name} for name in sorted(shown)],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **BODIES},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "an access token from /auth/login or /oauth/token"},
                "client_basic": {"type": "http", "scheme": "basic",
                                 "description": "a client's id and secret (RFC 6749 §2.3.1)"},
            },
        },
    })  # fmt: skip
