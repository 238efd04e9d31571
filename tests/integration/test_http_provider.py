"""The HTTP payment provider adapter against a real provider: a small Starlette app under uvicorn
on 127.0.0.1, started by the tests, that checks the signature, keeps one charge per idempotency
key, and answers as each reference asks (approve, decline, 500 then approve, hang). Then the
signed callback: genuine, forged, stale, duplicate and late. Payments run through the real
service on both databases; the ledger verifies after each test."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mwallet.bootstrap import Wallet
from mwallet.core.domain.payments import Payment, PaymentState, ProviderOutcome, luhn_digit
from mwallet.core.domain.users import Principal
from mwallet.core.errors import InvalidInput
from mwallet.core.services.wallet_service import WalletService
from mwallet.providers.config import providers_from_environment
from mwallet.providers.http import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    HttpProvider,
    HttpProviderSettings,
    sign,
    verify_callback,
)
from tests.support import OPERATOR, make_admin, register

SECRET = "shared-secret-for-tests"


@dataclass
class ProviderState:
    charges: Counter[str] = field(default_factory=Counter)  # payment id -> times charged
    results: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, key
    failures: Counter[str] = field(default_factory=Counter)  # payment id -> 500s given
    bad_signatures: int = 0


def provider_app(state: ProviderState) -> Starlette:
    """Reference prefixes: 1111 approve; 2222 decline; 3333 answer 500 twice then approve;
    4444 hang past the client's timeout (charged, as a slow real provider might); 5555 pending
    (the result comes by callback)."""

    async def checked(request: Request) -> bytes | None:
        body = await request.body()
        stamp = request.headers.get(TIMESTAMP_HEADER, "")
        if sign(SECRET, stamp, body) != request.headers.get(SIGNATURE_HEADER):
            state.bad_signatures += 1
            return None
        return body

    async def pay(request: Request) -> Response:
        body = await checked(request)
        if body is None:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        document = json.loads(body)
        key = request.headers["Idempotency-Key"]
        state.requests.append(("POST", "/payments", key))
        assert key == document["payment_id"]
        if key in state.results:  # a retry: the same answer, no second charge
            return JSONResponse(state.results[key])
        prefix = document["reference"][:4]
        if prefix == "3333" and state.failures[key] < 2:
            state.failures[key] += 1
            return JSONResponse({"error": "try again"}, status_code=500)
        if prefix == "4444":
            state.charges[key] += 1
            state.results[key] = {"status": "approved", "provider_ref": f"P-{key[-6:]}"}
            await asyncio.sleep(1.5)  # the client gives up after 0.5 s
            return JSONResponse(state.results[key])
        if prefix == "2222":
            state.results[key] = {"status": "declined", "reason": "unknown account"}
        elif prefix == "5555":
            return JSONResponse({"status": "pending"})
        else:
            state.charges[key] += 1
            state.results[key] = {"status": "approved", "provider_ref": f"P-{key[-6:]}"}
        return JSONResponse(state.results[key])

    async def status(request: Request) -> Response:
        if await checked(request) is None:
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.path_params["payment_id"]
        state.requests.append(("GET", f"/payments/{key}", key))
        if key not in state.results:
            return JSONResponse({"error": "no such payment"}, status_code=404)
        return JSONResponse(state.results[key])

    return Starlette(
        routes=[
            Route("/payments", pay, methods=["POST"]),
            Route("/payments/{payment_id}", status, methods=["GET"]),
        ]
    )


@dataclass
class LocalProvider:
    url: str
    state: ProviderState


@pytest.fixture
def local_provider() -> Iterator[LocalProvider]:
    state = ProviderState()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(provider_app(state), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the local provider did not start"
        time.sleep(0.02)
    yield LocalProvider(f"http://127.0.0.1:{port}", state)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def paying(wallet: Wallet, local_provider: LocalProvider) -> Iterator[tuple[Wallet, Principal]]:
    service = wallet.service
    service.providers["acme"] = HttpProvider(
        HttpProviderSettings(local_provider.url, SECRET, read_timeout=0.5, backoff=0.01)
    )
    admin = make_admin(service)
    service.add_biller(
        actor=admin, biller_id="acme-power", name="Acme Power", category="electricity",
        min_amount=service.parse_money("1"), max_amount=service.parse_money("1000"),
        provider="acme", pattern="[0-9]{8}", check="luhn",
    )  # fmt: skip
    ana = register(service, name="Ana Machava")
    service.topup(ana, amount=service.parse_money("500"), source="sandbox", idempotency_key="t")
    yield wallet, ana
    for provider in service.providers.values():
        if isinstance(provider, HttpProvider):
            provider.close()
    report = service.verify_ledger(actor=OPERATOR)
    assert report.ok, report.problems


def replace(service: WalletService, provider: HttpProvider) -> None:
    old = service.providers["acme"]
    if isinstance(old, HttpProvider):
        old.close()
    service.providers["acme"] = provider


def ref(prefix: str, n: int = 0) -> str:
    body = f"{prefix}{n:03d}"
    return body + luhn_digit(body)


def pay(wallet: Wallet, who: Principal, reference: str, amount: str = "40") -> Payment:
    service = wallet.service
    return service.pay_bill(
        who, biller_id="acme-power", reference=reference, amount=service.parse_money(amount),
        idempotency_key=f"k-{reference}",
    )  # fmt: skip


def balances(wallet: Wallet, who: Principal) -> tuple[str, str]:
    found = wallet.service.balance(who)
    return found.balance.to_decimal_string(), found.available.to_decimal_string()


def test_an_approved_payment_is_charged_once_and_captured(
    paying: tuple[Wallet, Principal], local_provider: LocalProvider
) -> None:
    wallet, ana = paying
    done = pay(wallet, ana, ref("1111"))
    assert done.state is PaymentState.SUCCEEDED
    assert done.provider_ref == f"P-{done.id[-6:]}"
    assert balances(wallet, ana) == ("460.00", "460.00")
    assert local_provider.state.charges[done.id] == 1
    assert local_provider.state.bad_signatures == 0
    # The same command again (same key): the same payment, no request to the provider.
    before = len(local_provider.state.requests)
    again = pay(wallet, ana, ref("1111"))
    assert again.id == done.id
    assert len(local_provider.state.requests) == before


def test_a_declined_payment_gives_the_money_back(paying: tuple[Wallet, Principal]) -> None:
    wallet, ana = paying
    done = pay(wallet, ana, ref("2222"))
    assert (done.state, done.reason) == (PaymentState.FAILED, "unknown account")
    assert balances(wallet, ana) == ("500.00", "500.00")


def test_500s_are_retried_with_the_same_key_and_charge_once(
    paying: tuple[Wallet, Principal], local_provider: LocalProvider
) -> None:
    wallet, ana = paying
    done = pay(wallet, ana, ref("3333"))
    assert done.state is PaymentState.SUCCEEDED
    posts = [r for r in local_provider.state.requests if r[0] == "POST" and r[2] == done.id]
    assert len(posts) == 3  # two 500s, then the answer, all with the payment's id as the key
    assert local_provider.state.charges[done.id] == 1


def test_a_timeout_leaves_it_unknown_and_the_status_query_settles_it_once(
    paying: tuple[Wallet, Principal], local_provider: LocalProvider
) -> None:
    wallet, ana = paying
    done = pay(wallet, ana, ref("4444"))
    assert done.state is PaymentState.UNKNOWN
    assert balances(wallet, ana) == ("500.00", "460.00")  # held, not released on a guess
    result = wallet.service.reconcile_payments(actor=OPERATOR)
    assert (result.succeeded, result.failed, result.still_unknown) == (1, 0, 0)
    settled, _ = wallet.service.payment(ana, payment_id=done.id)
    assert settled.state is PaymentState.SUCCEEDED
    assert balances(wallet, ana) == ("460.00", "460.00")
    assert local_provider.state.charges[done.id] == 1  # charged once, by the first request


def test_a_payment_the_provider_never_received_reconciles_to_failed(
    paying: tuple[Wallet, Principal], local_provider: LocalProvider
) -> None:
    wallet, ana = paying
    service = wallet.service
    # The provider is unreachable when the payment is made: nothing arrives, so it stays unknown.
    replace(
        service,
        HttpProvider(HttpProviderSettings("http://127.0.0.1:1", SECRET, retries=1, backoff=0.01)),
    )
    done = pay(wallet, ana, ref("1111", 7))
    assert done.state is PaymentState.UNKNOWN
    # Back online: it has never heard of the payment, so nothing was charged: failed, money back.
    replace(service, HttpProvider(HttpProviderSettings(local_provider.url, SECRET)))
    assert service.reconcile_payments(actor=OPERATOR).failed == 1
    settled, _ = service.payment(ana, payment_id=done.id)
    assert settled.state is PaymentState.FAILED
    assert balances(wallet, ana) == ("500.00", "500.00")


def signed(
    body: dict[str, str], *, secret: str = SECRET, at: float | None = None
) -> tuple[bytes, str, str]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time() if at is None else at))
    return raw, stamp, sign(secret, stamp, raw)


def test_a_signed_callback_settles_a_pending_payment_once(
    paying: tuple[Wallet, Principal],
) -> None:
    wallet, ana = paying
    service = wallet.service
    done = pay(wallet, ana, ref("5555"))
    assert done.state is PaymentState.UNKNOWN  # the provider said "pending"
    raw, stamp, signature = signed(
        {"payment_id": done.id, "status": "approved", "provider_ref": "P-LATE"}
    )
    callback = verify_callback(SECRET, raw, timestamp=stamp, signature=signature)
    assert callback.answer.outcome is ProviderOutcome.APPROVED
    settled = service.settle_payment(payment_id=callback.payment_id, answer=callback.answer)
    assert settled is not None
    assert (settled.state, settled.provider_ref) == (PaymentState.SUCCEEDED, "P-LATE")
    # The same callback again, or a contradicting one later: nothing moves.
    assert service.settle_payment(payment_id=done.id, answer=callback.answer) is None
    raw, stamp, signature = signed({"payment_id": done.id, "status": "declined"})
    late = verify_callback(SECRET, raw, timestamp=stamp, signature=signature)
    assert service.settle_payment(payment_id=done.id, answer=late.answer) is None
    assert balances(wallet, ana) == ("460.00", "460.00")


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("forged", "signature does not match"),
        ("stale", "outside the tolerance window"),
        ("unsigned", "not signed"),
        ("altered", "signature does not match"),
        ("pending", "does not say approved or declined"),
    ],
)
def test_a_bad_callback_is_refused_and_settles_nothing(
    paying: tuple[Wallet, Principal], case: str, says: str
) -> None:
    wallet, ana = paying
    done = pay(wallet, ana, ref("5555", 1))
    body = {"payment_id": done.id, "status": "approved"}
    raw, stamp, signature = signed(body)
    if case == "forged":
        raw, stamp, signature = signed(body, secret="not-the-secret")
    elif case == "stale":
        raw, stamp, signature = signed(body, at=time.time() - 3600)
    elif case == "unsigned":
        signature = ""
    elif case == "altered":
        raw = raw.replace(b"approved", b"declined")
    elif case == "pending":
        raw, stamp, signature = signed({"payment_id": done.id, "status": "pending"})
    with pytest.raises(InvalidInput, match=says):
        verify_callback(SECRET, raw, timestamp=stamp, signature=signature)
    settled, _ = wallet.service.payment(ana, payment_id=done.id)
    assert settled.state is PaymentState.UNKNOWN
    assert balances(wallet, ana) == ("500.00", "460.00")


def test_providers_come_from_the_environment() -> None:
    found = providers_from_environment(
        {
            "MWALLET_PROVIDERS": "acme, water-co",
            "MWALLET_PROVIDER_ACME_URL": "http://127.0.0.1:9",
            "MWALLET_PROVIDER_ACME_SECRET": "s1",
            "MWALLET_PROVIDER_WATER_CO_URL": "http://127.0.0.1:9",
            "MWALLET_PROVIDER_WATER_CO_SECRET": "s2",
        }
    )
    assert sorted(found) == ["acme", "water-co"]
    assert providers_from_environment({}) == {}
    from mwallet.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="MWALLET_PROVIDER_ACME_SECRET"):
        providers_from_environment(
            {"MWALLET_PROVIDERS": "acme", "MWALLET_PROVIDER_ACME_URL": "http://x"}
        )
