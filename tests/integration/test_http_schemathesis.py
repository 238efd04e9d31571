"""Schemathesis against `/openapi.json` of the whole app (every service), in process (ASGI), on
SQLite: for each operation it generates requests from the document, valid and invalid, and sends
them with a logged-in person's Bearer token (an admin's on `/admin/…`; `{user_id}` is that
person's own, so the requests reach the handlers past the ownership check). No answer may be a
server error, and each must be described by the document: its status, its content type, its body's
schema. A small number of examples per operation keeps the file to a few seconds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)
from starlette.applications import Starlette

from mwallet.bootstrap import Wallet
from mwallet.core.clock import FixedClock
from mwallet.core.domain.users import Principal
from mwallet.server.app import create_app
from tests.conftest import _template
from tests.integration.http_support import CALLBACK_SECRET
from tests.support import OPERATOR, PASSWORD, START, Template, make_admin, open_wallet, register

EXAMPLES = 12
# What the document promises: no server error; each status, content type, header and body as
# described; a method the path does not have is 405 with `Allow`. (Not `positive_data_acceptance`:
# the document cannot say which phone numbers, dates in order or amounts of the instance's
# currency are good, so schema-valid requests are rightly refused.)
CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_headers_conformance, response_schema_conformance, unsupported_method,
]  # fmt: skip


@dataclass(frozen=True)
class Served:
    app: Starlette
    person: Principal
    auth: dict[str, str]
    admin: dict[str, str]


@pytest.fixture(scope="module")
def served(
    templates: dict[str, Template], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    template = _template("sqlite", templates, tmp_path_factory.mktemp("template"))
    with template.fresh_copy(tmp_path_factory.mktemp("fuzz")) as url:
        wallet = open_wallet(url, FixedClock(START))
        try:
            yield _serve(wallet)
            # Whatever the requests moved, the books still prove themselves.
            assert wallet.service.verify_ledger(actor=OPERATOR).ok
        finally:
            wallet.close()


def _serve(wallet: Wallet) -> Served:
    service = wallet.service
    admin = make_admin(service)
    person = register(service, name="Fuzz Person")
    service.topup(person, amount=service.parse_money("1000"), source="sandbox",
                  idempotency_key="fuzz-funds")  # fmt: skip

    def bearer(who: Principal) -> dict[str, str]:
        tokens = service.login(phone=who.phone, password=PASSWORD).tokens
        return {"Authorization": f"Bearer {tokens.access_token}"}

    app = create_app(service, callback_secrets={"sandbox": CALLBACK_SECRET}, rate_limit=None)
    return Served(app, person, bearer(person), bearer(admin))


@pytest.fixture(scope="module")
def api(served: Served) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", served.app)


schema = schemathesis.pytest.from_fixture("api")


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_the_app_answers_every_request_as_its_document_says(case: Any, served: Served) -> None:
    if "user_id" in (case.path_parameters or {}):
        case.path_parameters["user_id"] = served.person.user_id
    auth = served.admin if case.path.startswith("/admin/") else served.auth
    case.call_and_validate(app=served.app, headers=auth, checks=CHECKS)
