"""The concurrent HTTP bank: 8 clients x 200 random transfers among 20 people through two real
`mwallet serve` wallet processes on one PostgreSQL (the layout of tests/e2e/serving.py, tokens
from its auth process), each with an Idempotency-Key, some sent again with the same key to the
other process, some sent to both processes at once. Afterwards the books must hold: money
conserved (the people's balances plus the fees of the accepted transfers are what was topped up),
no wallet below zero, every accepted transfer recorded exactly once and nothing else recorded, the
ledger verified."""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.e2e.serving import Cluster, sign_up
from tests.support import OPERATOR, open_wallet

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("services")]

PEOPLE = 20
CLIENTS = 8
TRANSFERS_EACH = 200
RETRY_SHARE = 0.1  # of the transfers sent again with the same key
TOPUP = Decimal("100.00")


@dataclass
class Outcome:
    """What one client saw: the transfers accepted (id -> fee), the statuses it got."""

    accepted: dict[str, Decimal] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    replays: int = 0
    twins: int = 0
    failures: list[str] = field(default_factory=list)


def client(number: int, services: Cluster, people: list[dict[str, Any]], outcome: Outcome) -> None:
    try:
        send(number, services, people, outcome)
    except Exception as exc:  # reported by the test, in its thread it would only be printed
        outcome.failures.append(f"client {number}: {exc!r}")


def send(number: int, services: Cluster, people: list[dict[str, Any]], outcome: Outcome) -> None:
    rng = random.Random(number)
    with httpx.Client(timeout=30) as http:
        for move in range(TRANSFERS_EACH):
            sender, recipient = rng.sample(people, 2)
            # Small amounts, so most succeed; now and then more than a wallet holds.
            amount = f"{rng.randint(1, 1500) / 100:.2f}" if move % 10 else "250.00"
            body = {"to": recipient["phone"], "amount": amount}
            headers = {**sender["auth"], "Idempotency-Key": f"bank-{number}-{move}"}
            where = rng.randrange(2)
            url = f"{services.wallets[where]}/wallet/{sender['user_id']}/transfer"
            if move % 25 == 0:  # sent to both processes at once: one moves, the other replays
                other = f"{services.wallets[1 - where]}/wallet/{sender['user_id']}/transfer"
                twin: list[httpx.Response] = []
                racer = threading.Thread(target=post_into, args=(twin, http, other, body, headers))
                racer.start()
                answer = http.post(url, json=body, headers=headers)
                racer.join()
                outcome.twins += 1
                if answer.status_code == twin[0].status_code == 201 and twin[0].json() != (
                    answer.json()
                ):
                    outcome.failures.append(f"twins differ: {answer.text} / {twin[0].text}")
                record(twin[0], outcome)
            else:
                answer = http.post(url, json=body, headers=headers)
            outcome.statuses[answer.status_code] += 1
            record(answer, outcome)
            if rng.random() < RETRY_SHARE:  # the same request again, at the other process
                other = f"{services.wallets[1 - where]}/wallet/{sender['user_id']}/transfer"
                again = http.post(other, json=body, headers=headers)
                outcome.replays += 1
                if answer.status_code == 201 and again.json() != answer.json():
                    outcome.failures.append(f"replay differs: {answer.text} / {again.text}")
                # A refusal records nothing and frees its key (core/services/idempotency.py):
                # the same request again is decided again, and may pass if money came in since.
                record(again, outcome)


def post_into(
    answers: list[httpx.Response], http: httpx.Client, url: str, body: Any, headers: Any
) -> None:
    answers.append(http.post(url, json=body, headers=headers))


def record(answer: httpx.Response, outcome: Outcome) -> None:
    if answer.status_code == 201:
        done = answer.json()
        outcome.accepted[done["transfer_id"]] = Decimal(done["fee"])
    elif answer.status_code != 422 or not answer.json()["type"].endswith("/insufficient_funds"):
        outcome.failures.append(f"{answer.status_code}: {answer.text}")


def test_concurrent_transfers_through_two_processes_keep_the_books(services: Cluster) -> None:
    with httpx.Client(timeout=30) as http:
        people = [
            sign_up(http, services.auth, f"+25884{7000000 + n:07d}", f"Bank {n}")
            for n in range(PEOPLE)
        ]
        for person in people:
            topped = http.post(
                f"{services.wallets[0]}/wallet/{person['user_id']}/topup",
                json={"amount": str(TOPUP)},
                headers={**person["auth"], "Idempotency-Key": "bank-topup"},
            )
            assert topped.status_code == 201, topped.text
    outcomes = [Outcome() for _ in range(CLIENTS)]
    threads = [
        threading.Thread(target=client, args=(n, services, people, outcomes[n]))
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [failure for outcome in outcomes for failure in outcome.failures] == []
    statuses = sum((outcome.statuses for outcome in outcomes), Counter[int]())
    assert statuses.total() == CLIENTS * TRANSFERS_EACH
    accepted = {tid: fee for outcome in outcomes for tid, fee in outcome.accepted.items()}
    assert len(accepted) >= statuses[201] > CLIENTS * TRANSFERS_EACH // 2
    assert statuses[422] > 0  # the large ones do run some wallets dry
    assert sum(outcome.replays for outcome in outcomes) > 0
    assert sum(outcome.twins for outcome in outcomes) == CLIENTS * TRANSFERS_EACH // 25

    ids = {person["user_id"] for person in people}
    with open_wallet(services.url) as wallet, wallet.engine.connect() as conn:
        recorded = [
            row.id
            for row in conn.execute(text("SELECT id, sender_user_id FROM transfers"))
            if row.sender_user_id in ids
        ]
        assert sorted(recorded) == sorted(accepted)  # each once, and nothing refused recorded
        balances = []
        with httpx.Client(timeout=30) as http:
            for person in people:
                found = http.get(
                    f"{services.wallets[1]}/wallet/{person['user_id']}/balance",
                    headers=person["auth"],
                )
                balances.append(Decimal(found.json()["balance"]))
        assert min(balances) >= 0
        assert sum(balances) + sum(accepted.values()) == TOPUP * PEOPLE
        assert wallet.service.verify_ledger(actor=OPERATOR).ok
