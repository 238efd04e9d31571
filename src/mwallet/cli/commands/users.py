"""init, register, login, logout, whoami."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mwallet.cli import output, session_file
from mwallet.cli.context import Code, IdempotencyKey, JsonFlag, idempotency_key_or_new, state
from mwallet.cli.exit_codes import fail
from mwallet.cli.passwords import read_password
from mwallet.render.users import user_json
from mwallet.render.values import when

if TYPE_CHECKING:
    from mwallet.core.services.accounts import LoginResult
    from mwallet.core.services.user_service import UserService

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
]
Phone = Annotated[str, typer.Option("--phone", help="Phone number, e.g. +258841234567.")]


def init(
    ctx: typer.Context,
    currency: Annotated[
        str | None,
        typer.Option("--currency", help="ISO-4217 code the books are kept in (default USD)."),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option("--region", help="Phone region for numbers typed without +country, e.g. MZ."),
    ] = None,
    admin_phone: Annotated[
        str | None,
        typer.Option(
            "--admin-phone",
            help="Make this registered user the first admin (only while there is none).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create or migrate the database. Safe to run twice."""
    cli = state(ctx)
    settings, created = cli.service().init(currency=currency, region=region)
    admin = cli.service().bootstrap_admin(phone=admin_phone) if admin_phone else None
    if as_json:
        output.emit_json(
            {
                "created": created,
                "currency": settings.currency,
                "region": settings.region,
                "home": str(cli.home),
                "admin": admin.phone if admin else None,
            }
        )
        return
    verb = "Created" if created else "Already set up:"
    if admin is not None:
        output.console().print(f"{admin.display_name} ({admin.phone}) is the first admin.")
    output.console().print(
        f"{verb} wallet in {settings.currency}"
        + (f", phone region {settings.region}" if settings.region else "")
        + f" [dim]({cli.home})[/dim]"
    )


def register(
    ctx: typer.Context,
    phone: Phone,
    name: Annotated[str, typer.Option("--name", help="Display name.")],
    email: Annotated[str | None, typer.Option("--email", help="E-mail address.")] = None,
    password_stdin: PasswordStdin = False,
    idempotency_key: IdempotencyKey = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a user and open their wallet."""
    password = read_password(from_stdin=password_stdin, confirm=True)
    user = (
        state(ctx)
        .user_service()
        .register(
            phone=phone,
            display_name=name,
            email=email,
            password=password,
            idempotency_key=idempotency_key_or_new(idempotency_key),
        )
    )
    if as_json:
        output.emit_json(user_json(user))
        return
    output.console().print(f"[green]Registered[/green] {user.display_name} ({user.phone})")


def login(
    ctx: typer.Context,
    phone: Annotated[
        str | None,
        typer.Option(
            "--phone",
            help="Phone number, e.g. +258841234567 (with --server and no --phone: approve "
            "this device in a browser instead of typing your password here).",
        ),
    ] = None,
    password_stdin: PasswordStdin = False,
    code: Code = None,
    server: Annotated[
        str | None,
        typer.Option("--server", help="Log in to this wallet server (as `mwallet --server`)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Log in; the session is kept in MWALLET_HOME, readable only by you."""
    from mwallet.core.errors import SecondFactorRequired

    cli = state(ctx)
    if server:
        cli.server = server.rstrip("/")
    service = cli.user_service()
    if phone is None and (cli.server is None or password_stdin or code is not None):
        raise fail("Missing option '--phone'.")
    device, new_device = cli.device_id()  # either way in, the same device id
    if phone is None:
        result = device_login(service, device)
    else:
        password = read_password(from_stdin=password_stdin, confirm=False)
        try:
            result = service.login(phone=phone, password=password, code=code, device=device)
        except SecondFactorRequired:
            if code is not None or password_stdin or not sys.stdin.isatty():
                raise
            typed = str(typer.prompt("Two-factor code (or a recovery code)"))
            result = service.login(phone=phone, password=password, code=typed, device=device)
    if new_device:
        cli.keep_device_id(device)
    cli.save_session(result.tokens, user_id=result.principal.user_id, phone=result.principal.phone)
    if as_json:
        output.emit_json(
            {
                "user_id": result.principal.user_id,
                "phone": result.principal.phone,
                "access_expires_at": when(result.tokens.access_expires_at),
                "expires_at": when(result.tokens.refresh_expires_at)
                if result.tokens.refresh_expires_at is not None
                else None,
            }
        )
        return
    output.console().print(
        f"Logged in as {result.principal.display_name} ({result.principal.phone})"
    )


def device_login(service: "UserService", device: str) -> "LoginResult":
    """The device authorization grant (RFC 8628): show where to approve this device, then poll
    at the server's pace until the person approves, refuses, or the code expires. `device`: this
    installation's id, sent with the polls as a password login sends it."""
    import time

    from mwallet.core.errors import AuthorizationPending, SlowDown, WalletError
    from mwallet.core.services.accounts import LoginResult

    asked = service.device_authorization()
    print(f"To log in, open {asked.verification_uri} and enter the code {asked.user_code}\n"
          f"(or open {asked.verification_uri_complete}). Waiting for your approval...",
          file=sys.stderr, flush=True)  # fmt: skip
    interval = asked.interval
    while True:
        time.sleep(interval)
        try:
            pair = service.device_token(device_code=asked.device_code, device=device)
        except SlowDown:
            interval += 5  # RFC 8628 §3.5
        except AuthorizationPending:
            pass
        except WalletError as error:
            if error.code != "rate_limited":
                raise
            interval += 5
        else:
            return LoginResult(pair, service.authenticate(access_token=pair.access_token))


def logout(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """End the session on this machine (and its refresh token everywhere)."""
    cli = state(ctx)
    saved = cli.saved_session()
    if saved is not None:
        cli.user_service().logout(refresh_token=saved.refresh_token)
    session_file.forget(cli.paths.session)
    if as_json:
        output.emit_json({"logged_out": saved is not None})
        return
    output.console().print("Logged out." if saved is not None else "You were not logged in.")


def whoami(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Who this machine is logged in as."""
    principal = state(ctx).principal()
    if as_json:
        output.emit_json(
            {
                "user_id": principal.user_id,
                "phone": principal.phone,
                "display_name": principal.display_name,
                "role": principal.role.value,
            }
        )
        return
    output.console().print(f"{principal.display_name} ({principal.phone}), {principal.role.value}")


def passwd(
    ctx: typer.Context,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the current password, then the new one, from two lines of stdin.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Change your password; every session ends, this one too."""
    cli = state(ctx)
    principal = cli.principal()
    current = read_password(from_stdin=password_stdin, confirm=False, prompt="Current password")
    new = read_password(from_stdin=password_stdin, confirm=True, prompt="New password")
    cli.user_service().change_password(principal, current=current, new=new)
    session_file.forget(cli.paths.session)
    if as_json:
        output.emit_json({"changed": True, "logged_out": True})
        return
    output.console().print("Password changed. Every session has ended: log in again.")
