"""`mwallet demo`: the whole wallet at work on a fresh temporary database, start to finish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mwallet.cli import output
from mwallet.cli.context import JsonFlag
from mwallet.render.movements import movement_page_json
from mwallet.render.values import when

if TYPE_CHECKING:
    from rich.console import Console

    from mwallet.atm.session import TerminalSession
    from mwallet.core.domain.terminals import Terminal
    from mwallet.core.domain.users import Principal
    from mwallet.core.services.wallet_service import WalletService

PEOPLE = (
    ("+258841000001", "Ana Machava", "ana@example.org"),
    ("+258842000002", "Bruno Tembe", None),
    ("+258843000003", "Carla Nhantumbo", "carla@example.org"),
)
OPERATOR = ("+258844000004", "Olga Mondlane", "olga@example.org")
DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - a throwaway wallet's password


def demo(
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo's database and say where.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the wallet end to end on a throwaway database (your own data is not touched)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="mwallet-demo-"))
    try:
        summary = run_demo(folder, quiet=as_json)
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    if as_json:
        output.emit_json({**summary, "kept_in": str(folder) if keep else None})
    elif keep:
        output.console().print(f"\n[dim]The demo's database is kept in {folder}[/dim]")


def run_demo(folder: Path, *, quiet: bool = False) -> dict[str, Any]:
    """Play the demo on a new database in `folder`; returns what happened (for --json)."""
    import io

    from rich.console import Console

    from mwallet import secret_keys
    from mwallet.bootstrap import build_wallet
    from mwallet.core.crypto import LazyKeyring
    from mwallet.locations import Paths, sqlite_url

    out = Console(file=io.StringIO()) if quiet else output.console()
    paths = Paths(folder)
    # A throwaway key file of its own, whatever MWALLET_SECRET_KEY says: nothing outlives the demo.
    keyring = LazyKeyring(lambda: secret_keys.load(paths.data_key, environ={}))
    with build_wallet(sqlite_url(paths.database), secrets=keyring) as wallet:
        return _play(wallet.service, out, paths.database)


def _play(service: WalletService, out: Console, database: Path) -> dict[str, Any]:
    from mwallet.core.errors import WalletError

    money = service.parse_money
    settings, _ = service.init(currency="USD")
    _step(out, f"A new wallet, books kept in {settings.currency} (SQLite, WAL, fsync per commit)")

    _step(out, "Three people register (passwords hashed with argon2id) and log in")
    people: dict[str, Principal] = {}
    for phone, name, email in PEOPLE:
        service.register(
            phone=phone,
            display_name=name,
            email=email,
            password=DEMO_PASSWORD,
            idempotency_key=f"demo-register-{phone[1:]}",
        )
        people[name.split()[0]] = service.login(phone=phone, password=DEMO_PASSWORD).principal
        out.print(f"  registered {name} ({phone})")
    ana, bruno, carla = people["Ana"], people["Bruno"], people["Carla"]
    service.set_notification_preferences(carla, language="pt-MZ")
    out.print(
        "  Carla reads her notifications in Portuguese (mwallet notify prefs --language pt-MZ)"
    )

    _step(out, "Olga registers and becomes the first admin (mwallet init --admin-phone)")
    olga = _operator(service)
    out.print(f"  {olga.display_name} ({olga.phone}) is {olga.role.value}")

    _step(out, "Ana tops up 150.00 from the sandbox funding source")
    topup = service.topup(ana, amount=money("150"), source="sandbox", idempotency_key="demo-t1")
    output.print_topup(topup, out)

    _step(out, "Ana sends money; Bruno passes some on to Carla")
    sent = [
        service.transfer(
            ana,
            to_phone=bruno.phone,
            amount=money("42.50"),
            note="rent share",
            idempotency_key="demo-send-1",
        ),
        service.transfer(
            bruno,
            to_phone=carla.phone,
            amount=money("12.25"),
            note="lunch",
            idempotency_key="demo-send-2",
        ),
    ]
    for transfer in sent:
        output.print_transfer(transfer, out)

    _step(out, "Ana's phone retries the first transfer with the same idempotency key")
    replay = service.transfer(
        ana,
        to_phone=bruno.phone,
        amount=money("42.50"),
        note="rent share",
        idempotency_key="demo-send-1",
    )
    output.print_transfer(replay, out, replayed_note=" — the same transfer; nothing moved again")

    refusals = _refusals(service, out, ana, bruno, carla)

    _step(out, "Balances")
    balances = {name: service.balance(principal) for name, principal in people.items()}
    _print_balances(out, balances)

    _step(out, "Ana's history (mwallet history --limit 5): a page, and the cursor to the next")
    history = service.movements(ana, limit=5)
    output.print_movements(history, out)

    authentication = (
        _two_factor(service, out, database, ana, bruno, olga)
        | _tokens_and_clients(service, out, carla, olga)
        | _cash(service, out, ana, bruno, carla, olga)
    )
    security = _security(service, out, carla, olga)
    security |= _bills(service, out, ana, olga)
    security |= _over_http(service, out, bruno, ana)
    security |= _tariffs_and_limits(service, out, ana, bruno, olga)
    security |= _notifications(service, out, database.parent / "spool", carla, olga)

    _step(out, "Ana tries an admin command; Olga runs mwallet admin ledger verify")
    try:
        service.verify_ledger(actor=ana)
    except WalletError as refusal:
        security["denied"] = refusal.code
        out.print(f"  Ana: [red]refused[/red] — {refusal.message} [dim]({refusal.code})[/dim]")
    report = service.verify_ledger(actor=olga)
    output.print_report(report, out)
    if not report.ok:  # pragma: no cover - a sound demo ledger is what the test suite proves
        raise typer.Exit(7)
    closing = _closing_report(service, out, ana, olga)
    return {
        "report": closing,
        "currency": settings.currency,
        "users": [output.balance_json(balance) for balance in balances.values()],
        "topup": output.topup_json(topup),
        "transfers": [output.transfer_json(transfer) for transfer in sent],
        "replayed_transfer_id": replay.id,
        "refusals": refusals,
        "history": movement_page_json(history),
        "ledger": output.report_json(report),
        **authentication,
        **security,
    }


def _closing_report(
    service: WalletService, out: Console, ana: Principal, olga: Principal
) -> dict[str, Any]:
    """The demo ends with a report: Ana's month (`mwallet report stats --months 1`) and the trial
    balance (`mwallet admin report trial-balance`): each currency sums to zero, the books match."""
    from mwallet.cli import stats_output
    from mwallet.render import reports

    _step(out, "Ana's month (mwallet report stats) and the trial balance (admin report)")
    month = service.usage_statistics(ana, months=1)
    stats_output.print_short_stats(month, out)
    trial = service.trial_balance(actor=olga)
    stats_output.print_trial_summary(trial, out)
    if not (trial.balanced and trial.matches):  # pragma: no cover - the suite proves the books
        raise typer.Exit(7)
    document = reports.stats_json(month)
    return {
        "stats": {key: document[key] for key in ("period", "from", "until", "in", "out", "held")},
        "trial_balance": {
            key: value
            for key, value in reports.trial_json(trial).items()
            if key in ("totals", "balanced", "matches_postings")
        },
    }


def _refusals(
    service: WalletService, out: Console, ana: Principal, bruno: Principal, carla: Principal
) -> list[dict[str, str]]:
    from mwallet.core.errors import WalletError

    money = service.parse_money
    _step(out, "Refusals change nothing")
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("Carla tries to send 500.00", lambda: service.transfer(
            carla, to_phone=ana.phone, amount=money("500"), note=None,
            idempotency_key="demo-send-3")),
        ("Bruno sends to himself", lambda: service.transfer(
            bruno, to_phone=bruno.phone, amount=money("1"), note=None,
            idempotency_key="demo-send-4")),
        ("Ana sends to a number with no wallet", lambda: service.transfer(
            ana, to_phone="+258849999999", amount=money("1"), note=None,
            idempotency_key="demo-send-5")),
        ("Ana types 10.999", lambda: money("10.999")),
        ("Ana reuses a key for another amount", lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=money("1"), note="rent share",
            idempotency_key="demo-send-1")),
        ("Carla's phone resends the 500.00 with its key", lambda: service.transfer(
            carla, to_phone=ana.phone, amount=money("500"), note=None,
            idempotency_key="demo-send-3")),
    ]  # fmt: skip
    refusals = []
    for label, attempt in attempts:
        try:
            attempt()
        except WalletError as refusal:
            refusals.append({"attempt": label, "error": refusal.code, "message": refusal.message})
            out.print(
                f"  {label}: [red]refused[/red] — {refusal.message} [dim]({refusal.code})[/dim]"
            )
        else:  # pragma: no cover - each attempt above breaks a rule
            raise AssertionError(f"the demo expected a refusal: {label}")
    return refusals


def _operator(service: WalletService) -> Principal:
    phone, name, email = OPERATOR
    service.register(
        phone=phone, display_name=name, email=email, password=DEMO_PASSWORD,
        idempotency_key="demo-register-operator",
    )  # fmt: skip
    service.bootstrap_admin(phone=phone)
    return service.login(phone=phone, password=DEMO_PASSWORD).principal


def _security(
    service: WalletService, out: Console, carla: Principal, olga: Principal
) -> dict[str, Any]:
    from mwallet.core.errors import WalletError

    _step(out, "Someone tries to guess Carla's password")
    guesses = []
    for guess in ("123456", "password", "carla2026", "qwerty123", "letmein!", DEMO_PASSWORD):
        try:
            service.login(phone=carla.phone, password=guess)
        except WalletError as refusal:
            guesses.append(refusal.code)
            out.print(f"  {guess!r}: [red]{refusal.message}[/red]")
    out.print("  (five failures in a row lock the number for 30 minutes, even the right password)")

    _step(out, "mwallet admin audit verify — the hash-chained record of security events")
    report = service.verify_audit_log(actor=olga, anchor=None)
    output.print_audit(service.audit_log(actor=olga, limit=5), out)
    output.print_audit_report(report, out)
    return {
        "password_guesses": guesses,
        "audit_log": {"ok": report.ok, "records": report.records},
    }


def _bills(service: WalletService, out: Console, ana: Principal, olga: Principal) -> dict[str, Any]:
    """A bill paid, a reference refused for its check digit, and a payment the provider could
    not answer: held, then settled by the reconciliation."""
    money = service.parse_money
    _step(out, "Ana tops up 100.00 from her card, pays her water bill (45.80), buys airtime")
    card = service.top_up_from(
        ana, source="card", reference="4111 1111 1111 1111", amount=money("100"),
        idempotency_key="demo-t2",
    )  # fmt: skip
    out.print(f"  mwallet topup 100 --source card --card …1111: {card.state.value}, credited once")
    water = service.pay_bill(
        ana, biller_id="aguas-maputo", reference="1234 5674", amount=money("45.80"),
        idempotency_key="demo-bill-1",
    )  # fmt: skip
    out.print(f"  {water.state.value}: receipt {water.provider_ref}")
    airtime = service.pay_airtime(
        ana, phone=None, amount=money("20"), idempotency_key="demo-airtime-1"
    )
    out.print(
        f"  mwallet pay airtime 20 (her own number, {airtime.biller_id}): {airtime.state.value}, "
        f"receipt {airtime.provider_ref}"
    )
    typo = _refused(out, "reference 1234 5675", lambda: service.pay_bill(
        ana, biller_id="aguas-maputo", reference="1234 5675", amount=money("10"),
        idempotency_key="demo-bill-2"))  # fmt: skip
    _step(out, "The TV provider times out on Ana's next bill: the money stays held")
    tv = service.pay_bill(
        ana, biller_id="tvcabo", reference="99920001", amount=money("12"),
        idempotency_key="demo-bill-3",
    )  # fmt: skip
    held = service.balance(ana)
    out.print(
        f"  {tv.state.value}: balance {held.balance.format()}, available "
        f"{held.available.format()} (never released on a guess, never charged twice)"
    )
    done = service.reconcile_payments(actor=olga)
    settled, _ = service.payment(ana, payment_id=tv.id)
    out.print(
        f"  mwallet admin payments reconcile: the provider says approved -> {settled.state.value}"
    )
    return {
        "bills": {
            "card_topup": card.state.value,
            "water": water.state.value,
            "airtime": airtime.state.value,
            "typo": typo,
            "timed_out": tv.state.value,
            "reconciled": settled.state.value,
            "reconciliation": [done.succeeded, done.failed, done.still_unknown],
        }
    }


def _over_http(
    service: WalletService, out: Console, sender: Principal, recipient: Principal
) -> dict[str, Any]:
    """The same wallet as HTTP services (mwallet serve), on a free local port for a moment."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from mwallet.server.app import create_app

    _step(
        out, "The same wallet over HTTP (mwallet serve): a balance, a transfer sent twice, a report"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(service), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            login = http.post(
                "/auth/login", json={"phone": sender.phone, "password": DEMO_PASSWORD}
            )
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}", "Idempotency-Key": "demo-http-1"}
            balance = http.get(f"/wallet/{sender.user_id}/balance", headers=auth).json()
            out.print(f"  GET /wallet/{{userId}}/balance -> {balance['balance']} "
                      f"({balance['available']} available)")  # fmt: skip
            body = {"to": recipient.phone, "amount": "5.00", "note": "over HTTP"}
            first = http.post(f"/wallet/{sender.user_id}/transfer", json=body, headers=auth)
            again = http.post(f"/wallet/{sender.user_id}/transfer", json=body, headers=auth)
            out.print(f"  POST /wallet/{{userId}}/transfer -> {first.status_code}; the same "
                      f"Idempotency-Key again -> {again.status_code}, the same transfer: "
                      f"{first.json() == again.json()}")  # fmt: skip
            floaty = http.post(f"/wallet/{sender.user_id}/transfer", headers=auth,
                               content=b'{"to": "+258841234567", "amount": 5.5}')  # fmt: skip
            out.print(f"  an amount sent as a JSON float -> {floaty.status_code} "
                      f"{floaty.json()['type'].rsplit('/', 1)[-1]}")  # fmt: skip
            page = http.get(f"/reports/transactions/{sender.user_id}", headers=auth,
                            params={"limit": "3"})  # fmt: skip
            newest = page.json()["movements"][0]
            out.print(f"  GET /reports/transactions/{{userId}}?limit=3 -> {page.status_code}, "
                      f"newest: {newest['type']} {newest['amount']}, and a cursor to the next "
                      f"page: {page.json()['next_cursor'] is not None}")  # fmt: skip
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    return {
        "http": {
            "transfer": first.status_code,
            "replay_same": first.json() == again.json(),
            "float_refused": floaty.status_code,
            "report_page": len(page.json()["movements"]),
        }
    }


def _portuguese(service: WalletService, out: Console, carla: Principal) -> None:
    service.set_notification_preferences(carla, language="pt-MZ")
    out.print("  Carla reads notifications in Portuguese (mwallet notify prefs --language pt-MZ)")


def _notifications(
    service: WalletService, out: Console, spool: Path, carla: Principal, olga: Principal
) -> dict[str, Any]:
    """Every event so far becomes notifications: the inbox at once, e-mail and SMS through the
    worker (to a spool folder here: no SMTP server or SMS gateway needed)."""
    from mwallet.notify.spool import spool_senders

    _step(out, "Notifications: mwallet notify worker --once (embedded: no broker needed)")
    relayed = service.relay_notifications()
    senders = spool_senders(spool)
    report = service.dispatch_notifications(senders)
    spooled = {channel.value: len(sender.sent()) for channel, sender in senders.items()}
    out.print(
        f"  {relayed} events relayed; {report.sent} e-mails and SMS sent "
        f"({spooled['email']} e-mails, {spooled['sms']} SMS in the spool)"
    )
    _step(out, "Carla's inbox (mwallet inbox), in Portuguese")
    inbox = service.inbox(carla, limit=6)
    for one in inbox:
        out.print(f"  • [bold]{one.title}[/bold]: {one.body}")
    stats = service.notification_stats(actor=olga)
    return {
        "notifications": {
            "relayed": relayed,
            "sent": report.sent,
            "spooled": spooled,
            "carla_inbox": [one.kind for one in inbox],
            "backlog": stats.outbox_backlog,
        }
    }


def _refused(out: Console, label: str, attempt: Callable[[], object]) -> str:
    """Run an attempt the demo expects to be refused; show and return the refusal's code."""
    from mwallet.core.errors import WalletError

    try:
        attempt()
    except WalletError as refusal:
        out.print(f"  {label}: [red]refused[/red] — {refusal.message} [dim]({refusal.code})[/dim]")
        return refusal.code
    raise AssertionError(f"the demo expected a refusal: {label}")  # pragma: no cover


def _two_factor(
    service: WalletService,
    out: Console,
    database: Path,
    ana: Principal,
    bruno: Principal,
    olga: Principal,
) -> dict[str, Any]:
    """2FA enrolment, a login that needs the code, a replayed code, and step-up."""
    import segno

    from mwallet.core import otp

    def code_now(secret: str, ahead: int = 0) -> str:
        # What Ana's authenticator app shows (`ahead` = 1: the next 30-second code, within drift).
        return otp.code_at_step(secret, otp.time_step(service.clock.now()) + ahead)

    _step(out, "Ana turns on two-factor authentication (mwallet 2fa enable)")
    enrollment = service.begin_two_factor(ana)
    width, height = segno.make(enrollment.uri, error="m").symbol_size(border=0)
    out.print(f"  her app scans a {width}x{height} QR code of {enrollment.uri.split('?')[0]}?…")
    first_code = code_now(enrollment.secret)
    recovery = service.confirm_two_factor(ana, code=first_code)
    out.print(
        f"  confirmed with the app's code {first_code}; {len(recovery)} single-use recovery "
        f"codes are shown once, e.g. {recovery[0]}"
    )
    in_plain = any(  # the database file and its write-ahead log
        enrollment.secret.encode() in path.read_bytes()
        for path in database.parent.glob(f"{database.name}*")
    )
    out.print(
        "  the secret is kept sealed with AES-GCM under a data key outside the database "
        f"(found in plain text in the database file: {in_plain})"
    )

    _step(out, "Ana logs in again: now the password is not enough")
    refusals = {
        "without_code": _refused(
            out,
            "password only",
            lambda: service.login(phone=ana.phone, password=DEMO_PASSWORD),
        )
    }
    login_code = code_now(enrollment.secret, ahead=1)
    service.login(phone=ana.phone, password=DEMO_PASSWORD, code=login_code)
    out.print(f"  password + code {login_code}: [green]logged in[/green]")
    refusals["replayed_code"] = _refused(
        out,
        f"the same code {login_code} again",
        lambda: service.login(phone=ana.phone, password=DEMO_PASSWORD, code=login_code),
    )

    _step(out, "Olga sets the step-up amount to 50.00: larger payments need a fresh code")
    service.set_step_up(actor=olga, amount=service.parse_money("50"))
    refusals["step_up_without_code"] = _refused(
        out,
        "Ana sends 60.00 without a code",
        lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=service.parse_money("60"), note=None,
            idempotency_key="demo-big-1",
        ),
    )  # fmt: skip
    big = service.transfer(
        ana, to_phone=bruno.phone, amount=service.parse_money("60"), note="deposit",
        idempotency_key="demo-big-2", code=recovery[0],
    )  # fmt: skip
    out.print(f"  with a recovery code (now spent): [green]sent[/green] {big.amount.format()}")
    return {
        "two_factor": {
            "enabled": service.two_factor_status(ana).enabled,
            "recovery_codes": len(recovery),
            "secret_in_plain_text": in_plain,
        },
        "step_up_transfer": output.transfer_json(big),
        "two_factor_refusals": refusals,
    }


def _tokens_and_clients(
    service: WalletService, out: Console, carla: Principal, olga: Principal
) -> dict[str, Any]:
    """A session's tokens, refresh-token reuse, key rotation, and an ATM client refused."""
    from mwallet.core import tokens
    from mwallet.core.domain.clients import ClientKind

    _step(out, "Carla's session: a 15-minute EdDSA JWT and a refresh token that rotates on use")
    pair = service.login(phone=carla.phone, password=DEMO_PASSWORD).tokens
    out.print(
        f"  access token {pair.access_token[:24]}… signed by key "
        f"{tokens.key_id_of(pair.access_token)}, expires {when(pair.access_expires_at)}"
    )
    old_refresh = pair.refresh_token or ""
    renewed = service.refresh(refresh_token=old_refresh)
    out.print("  refreshed: a new pair; the old refresh token is spent")
    refusals = {
        "refresh_reused": _refused(
            out,
            "a stolen copy of the old refresh token",
            lambda: service.refresh(refresh_token=old_refresh),
        ),
        "session_after_reuse": _refused(
            out,
            "the session it belonged to",
            lambda: service.authenticate(access_token=renewed.access_token),
        ),
    }

    _step(out, "Olga rotates the signing key and registers an ATM terminal (an OAuth client)")
    rotated = service.rotate_signing_key(actor=olga)
    jwks = service.jwks()
    out.print(
        f"  new key {rotated.kid}; the JWKS publishes {len(jwks['keys'])} public keys "
        "(the old one verifies until its last token expires)"
    )
    atm = service.add_client(actor=olga, kind=ClientKind.ATM, name="ATM Baixa 01")
    token = service.client_token(client_id=atm.client.id, client_secret=atm.secret)
    terminal = service.authenticate(access_token=token.access_token)
    out.print(
        f"  {atm.client.name} gets a token with scope {' '.join(sorted(terminal.scopes))} "
        "by the client-credentials grant"
    )
    refusals["atm_transfer"] = _refused(
        out,
        "the ATM tries to send money",
        lambda: service.transfer(
            terminal, to_phone=carla.phone, amount=service.parse_money("1"), note=None,
            idempotency_key="demo-atm-1",
        ),
    )  # fmt: skip
    return {
        "signing_keys": len(jwks["keys"]),
        "atm_client": atm.client.id,
        "token_refusals": refusals,
    }


def _cash(
    service: WalletService,
    out: Console,
    ana: Principal,
    bruno: Principal,
    carla: Principal,
    olga: Principal,
) -> dict[str, Any]:
    """Cash-in at an agent; withdrawals at an ATM (QR, PIN, exact notes) and at the agent."""
    import io

    import segno

    from mwallet.core.domain.withdrawals import Channel, format_code

    money = service.parse_money
    _step(out, "Olga registers an ATM and loads its cassettes; Bruno becomes an agent")
    atm = service.add_atm(actor=olga, name="ATM Baixa 02")
    notes_in = {money("50").minor: 20, money("20").minor: 40}
    loaded = service.load_cassettes(actor=olga, terminal_id=atm.terminal.id, notes=notes_in)
    out.print(f"  {atm.terminal.name}: " + ", ".join(output.cassette_line(loaded, "USD")))
    service.add_agent(actor=olga, phone=bruno.phone)
    agent = service.login(phone=bruno.phone, password=DEMO_PASSWORD).principal
    out.print(f"  {bruno.display_name} is now an {agent.role.value}")

    _step(out, "Carla pays 60.00 in cash at Bruno's shop (mwallet agent cash-in)")
    service.cash_in(agent, to_phone=carla.phone, amount=money("60"), idempotency_key="demo-ci")
    out.print(f"  Carla's balance: {service.balance(carla).balance.format()}")

    _set_fee(service, out, olga)

    _step(out, "Carla withdraws 60.00 at the ATM (mwallet withdraw 60 --pin-stdin)")
    issued = service.request_withdrawal(
        carla, amount=money("60"), channel=Channel.ATM, pin="4826", idempotency_key="demo-w1"
    )
    code, payload = issued.code or "", issued.qr_payload or ""
    held = service.balance(carla)
    out.print(
        f"  code {format_code(code)}, the PIN she chose, valid 30 minutes; fee "
        f"{issued.withdrawal.fee.format()}; balance {held.balance.format()}, "
        f"available {held.available.format()}"
    )
    drawn = io.StringIO()
    segno.make(payload, error="m").terminal(out=drawn, compact=True)
    out.print(drawn.getvalue(), markup=False, highlight=False, end="", crop=False)
    client_id = atm.client.id if atm.client else ""
    token = service.client_token(client_id=client_id, client_secret=atm.client_secret or "")
    terminal = service.authenticate(access_token=token.access_token)
    claims = service.check_withdrawal_qr(payload)
    out.print(f"  the ATM scans it: signature good, {claims.amount.format()} (checked offline)")
    wrong = _refused(
        out, "PIN 1111", lambda: service.redeem_withdrawal(terminal, qr_payload=payload, pin="1111")
    )
    redeemed = service.redeem_withdrawal(terminal, qr_payload=payload, pin="4826")
    notes = redeemed.notes or {}
    dispensed = ", ".join(f"{n} x {money(str(d // 100)).format()}" for d, n in notes.items())
    out.print(f"  PIN 4826: {redeemed.customer_name}, dispensing {dispensed} (no 50 fits in 60)")
    done = service.complete_withdrawal(terminal, withdrawal_id=redeemed.withdrawal.id)
    out.print(f"  cash taken: the withdrawal is {done.state.value}")

    _step(out, "Ana withdraws 30.00 from Bruno, then asks for 10.00 more and cancels it")
    at_agent = service.request_withdrawal(
        ana, amount=money("30"), channel=Channel.AGENT, pin=None, idempotency_key="demo-w2"
    )
    paid = service.redeem_withdrawal(agent, code=at_agent.code or "", pin=at_agent.pin or "")
    service.complete_withdrawal(agent, withdrawal_id=paid.withdrawal.id)
    out.print(f"  Bruno hands over 30.00 for code {format_code(at_agent.code or '')}")
    again = service.request_withdrawal(
        ana, amount=money("10"), channel=Channel.ATM, pin=None, idempotency_key="demo-w3"
    )
    cancelled = service.cancel_withdrawal(ana, withdrawal_id=again.withdrawal.id)
    available = service.balance(ana).available.format()
    out.print(f"  {cancelled.state.value} (mwallet withdraw cancel ID): {available} available")

    days = _jam_and_days(service, out, ana, olga, agent, terminal, atm.terminal)
    return {
        "withdrawal": {
            "state": done.state.value,
            "notes": {str(denomination): count for denomination, count in notes.items()},
            "wrong_pin": wrong,
            "qr_payload_prefix": payload[:4],
            "fee": done.fee.to_decimal_string(),
        },
        "agent_withdrawal": service.list_withdrawals(ana, limit=2)[1].state.value,
        "cancelled_withdrawal": cancelled.state.value,
        **days,
    }


def _set_fee(service: WalletService, out: Console, olga: Principal) -> None:
    from mwallet.core.domain.money import Money
    from mwallet.core.domain.tariffs import Movement, flat

    _step(
        out, "Olga sets a 0.50 fee at ATMs (mwallet admin tariffs set withdrawal-atm --flat 0.50)"
    )
    fee = service.parse_money("0.50")
    service.set_tariff(actor=olga, movement=Movement.WITHDRAWAL_ATM, tariff=flat(fee.minor))
    policy = service.withdrawal_policy()
    low, high = Money(policy.min_minor, "USD"), Money(policy.max_minor, "USD")
    out.print(
        f"  withdrawals of {low.format()} to {high.format()}, codes valid "
        f"{int(policy.lifetime.total_seconds() // 60)} minutes; agents charge nothing"
    )


def _tariffs_and_limits(
    service: WalletService, out: Console, ana: Principal, bruno: Principal, olga: Principal
) -> dict[str, Any]:
    """A percentage fee on transfers, shown before confirming; a daily limit that refuses."""
    from mwallet.core.domain.tariffs import Band, LimitFamily, Movement, Tariff, Tier

    money = service.parse_money
    _step(out, "Olga prices transfers at 1% (min 0.10, max 2.00) and caps them per day")
    tariff = Tariff(
        (Band(None, 0, 100),), min_minor=money("0.10").minor, max_minor=money("2").minor
    )
    service.set_tariff(actor=olga, movement=Movement.TRANSFER, tariff=tariff)
    used = service.my_limits(ana)[1][LimitFamily.TRANSFER][0].used
    cap = used + money("25")
    service.set_limit(actor=olga, family=LimitFamily.TRANSFER, tier=Tier.BASIC, daily=cap)
    out.print(
        f"  mwallet admin tariffs set transfer --percent 1 --min 0.10 --max 2.00; "
        f"mwallet admin limits set transfer --tier basic --daily {cap.to_decimal_string()}"
    )
    quote = service.quote(ana, Movement.TRANSFER, money("20"))
    left = quote.allowances[0].left
    out.print(
        f"  Ana asks first (mwallet fees transfer 20): fee {quote.fee.format()}, total "
        f"{quote.total.format()}; {left.format() if left else 'no limit'} left today"
    )
    sent = service.transfer(
        ana, to_phone=bruno.phone, amount=money("20"), note=None,
        idempotency_key="demo-fee-transfer",
    )  # fmt: skip
    out.print(f"  she sends 20.00 to Bruno and pays {sent.fee.format()}")
    refused = _refused(
        out, "Ana sends 10.00 more",
        lambda: service.transfer(
            ana, to_phone=bruno.phone, amount=money("10"), note=None,
            idempotency_key="demo-over-limit",
        ),
    )  # fmt: skip
    return {"transfer_fee": sent.fee.to_decimal_string(), "over_limit": refused}


def _jam_and_days(
    service: WalletService,
    out: Console,
    ana: Principal,
    olga: Principal,
    agent: Principal,
    atm: Principal,
    station: Terminal,
) -> dict[str, Any]:
    """A dispenser fault reversed; then the day as the agent's and the ATM's screens show it."""
    from mwallet.atm.reader import TypedCode
    from mwallet.core.domain.withdrawals import Channel

    money = service.parse_money
    _step(out, "Bruno tries 40.00 at the ATM; its dispenser jams, so nothing is paid out")
    jammed = _jammed_atm(service, atm, station.name)
    tried = service.request_withdrawal(
        agent, amount=money("40"), channel=Channel.ATM, pin="7391", idempotency_key="demo-w4"
    )
    authorized = jammed.redeem(TypedCode(tried.code or ""), "7391")
    jam = _refused(out, "dispensing", lambda: jammed.pay_out(authorized))
    out.print(f"  reversed: Bruno's {service.balance(agent).available.format()} available again")

    _step(out, "The day at the counter and at the ATM (F3 on the agent's app; F9 supervisor)")
    counter = service.terminal_day(agent)
    out.print(
        f"  Bruno: float {counter.cash.format()}; cash in {counter.cash_in.format()} "
        f"({counter.cash_in_count}), paid out {counter.paid_out.format()} "
        f"({counter.paid_out_count})"
    )
    machine = service.terminal_day(olga, terminal_id=station.id)
    out.print(
        f"  {station.name}: {machine.cash.format()} in the cassettes; paid out "
        f"{machine.paid_out.format()} ({machine.paid_out_count}), reversed {machine.reversed_count}"
    )
    return {
        "jammed_withdrawal": jam,
        "agent_day": {
            "float": counter.cash.to_decimal_string(),
            "cash_in_count": counter.cash_in_count,
            "paid_out_count": counter.paid_out_count,
        },
        "atm_day": {
            "cash": machine.cash.to_decimal_string(),
            "paid_out_count": machine.paid_out_count,
            "reversed_count": machine.reversed_count,
        },
    }


def _jammed_atm(service: WalletService, atm: Principal, name: str) -> TerminalSession:
    """The ATM's session with a dispenser that jams (a real one reports such faults)."""
    from collections.abc import Mapping

    from mwallet.atm.session import DispenseFault, TerminalSession

    class Jammed:
        def present(self, notes: Mapping[int, int]) -> None:
            raise DispenseFault("notes jammed")

    return TerminalSession(service, lambda: atm, name=name, dispenser=Jammed())


def _step(out: Console, title: str) -> None:
    out.print(f"\n[bold cyan]▸ {title}[/bold cyan]")


def _print_balances(out: Console, balances: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title_justify="left")
    table.add_column("Who")
    table.add_column("Phone")
    table.add_column("Balance", justify="right")
    for name, balance in balances.items():
        table.add_row(name, balance.phone, balance.balance.format())
    out.print(table)
