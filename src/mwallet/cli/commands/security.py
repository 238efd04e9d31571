"""mwallet admin keys|clients|limits …, and `mwallet token` (OAuth client credentials)."""

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mwallet.cli import output
from mwallet.cli.context import JsonFlag, state
from mwallet.cli.exit_codes import fail
from mwallet.render.values import when

if TYPE_CHECKING:
    pass

keys_app = typer.Typer(help="Token signing keys and the data key.", no_args_is_help=True)
clients_app = typer.Typer(help="OAuth 2.0 clients: ATM terminals, agents, partners.")
limits_app = typer.Typer(help="Limits on money movements.", no_args_is_help=True)
clients_app.info.no_args_is_help = True


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Sign new tokens with a new key; old keys verify until their tokens expire."""
    cli = state(ctx)
    key = cli.service().rotate_signing_key(actor=cli.principal())
    if as_json:
        output.emit_json({"kid": key.kid, "created_at": when(key.created_at)})
        return
    output.console().print(f"New signing key {key.kid}; older keys now only verify.")


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every signing key: which signs, which still verifies."""
    cli = state(ctx)
    found = cli.service().signing_keys(actor=cli.principal())
    if as_json:
        output.emit_json(
            [
                {
                    "kid": key.kid,
                    "created_at": when(key.created_at),
                    "retired_at": when(key.retired_at) if key.retired_at else None,
                    "verifies": key.verifies,
                }
                for key in found
            ]
        )
        return
    from rich.table import Table

    table = Table("Key", "Created", "State")
    for key in found:
        state_text = (
            "signs" if key.retired_at is None else "verifies" if key.verifies else "expired"
        )
        table.add_row(key.kid, when(key.created_at), state_text)
    output.console().print(table)


@keys_app.command("jwks")
def keys_jwks(ctx: typer.Context) -> None:
    """Print the JSON Web Key Set that verifies access tokens (public keys only)."""
    output.emit_json(state(ctx).service().jwks())


@keys_app.command("rotate-data-key")
def rotate_data_key(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Re-seal every stored secret under a new data key.

    With the key file (MWALLET_HOME/data.key) a new key is made, everything is re-sealed, and the
    old key is dropped. With MWALLET_SECRET_KEY, put the new key first in it, run this, then
    remove the old one.
    """
    from mwallet import secret_keys

    cli = state(ctx)
    service = cli.service()
    from_env = secret_keys.uses_environment()
    store = (
        secret_keys.EnvironmentKeyStore()
        if from_env
        else secret_keys.KeyFileStore(cli.paths.data_key, cli.keyring())
    )
    count = service.rotate_data_key(actor=cli.principal(), store=store)
    kid = cli.keyring().current_key_id
    if as_json:
        output.emit_json({"key_id": kid, "resealed": count})
        return
    hint = "" if not from_env else " Old keys can now be removed from MWALLET_SECRET_KEY."
    output.console().print(f"{count} secret(s) re-sealed under data key {kid}.{hint}")


@clients_app.command("add")
def clients_add(
    ctx: typer.Context,
    kind: Annotated[str, typer.Option("--kind", help="atm, agent or partner.")],
    name: Annotated[str, typer.Option("--name", help="A name people recognise.")],
    scopes: Annotated[
        str | None, typer.Option("--scopes", help="Space-separated; default: all of its kind's.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a client and show its secret, once."""
    from mwallet.core.domain.clients import parse_kind

    cli = state(ctx)
    made = cli.service().add_client(
        actor=cli.principal(), kind=parse_kind(kind), name=name, scopes=scopes
    )
    client = made.client
    if as_json:
        output.emit_json({**output.client_json(client), "client_secret": made.secret})
        return
    out = output.console()
    out.print(
        f"Client {client.id} ({client.kind.value}, scopes: {' '.join(sorted(client.scopes))})"
    )
    out.print(f"Secret (shown once, keep it safe): [bold]{made.secret}[/bold]")


@clients_app.command("list")
def clients_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Registered clients (never their secrets)."""
    cli = state(ctx)
    found = cli.service().list_clients(actor=cli.principal(), limit=limit)
    if as_json:
        output.emit_json([output.client_json(client) for client in found])
        return
    from rich.table import Table

    table = Table("Client", "Kind", "Name", "Scopes", "State")
    for client in found:
        table.add_row(
            client.id,
            client.kind.value,
            client.name,
            " ".join(sorted(client.scopes)),
            "disabled" if client.disabled_at else "active",
        )
    output.console().print(table)


@clients_app.command("disable")
def clients_disable(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Argument(help="The client's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Stop a client from getting tokens; the ones it holds stop working too."""
    cli = state(ctx)
    cli.service().disable_client(actor=cli.principal(), client_id=client_id)
    if as_json:
        output.emit_json({"client_id": client_id, "disabled": True})
        return
    output.console().print(f"Client {client_id} is disabled.")


@limits_app.command("step-up")
def limits_step_up(
    ctx: typer.Context,
    amount: Annotated[
        str | None, typer.Argument(help="New amount; show the current one when left out.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Movements of at least this amount need a fresh 2FA code (for people with 2FA on)."""
    cli = state(ctx)
    service = cli.service()
    if amount is None:
        current = service.step_up_amount()
    else:
        current = service.set_step_up(actor=cli.principal(), amount=service.parse_money(amount))
    if as_json:
        output.emit_json({"step_up_amount": output.amount(current)})
        return
    output.console().print(f"Step-up amount: {current.format()}")


MAX_EXPIRY_MINUTES = 24 * 60


@limits_app.command("withdrawals")
def limits_withdrawals(
    ctx: typer.Context,
    min_amount: Annotated[
        str | None, typer.Option("--min", help="The smallest withdrawal.")
    ] = None,
    max_amount: Annotated[str | None, typer.Option("--max", help="The largest withdrawal.")] = None,
    expiry: Annotated[
        int | None, typer.Option("--expiry", help="Minutes a code stays valid (1 to 1440).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the bounds of one withdrawal and a code's lifetime; change the ones given (admins).
    Fees are tariffs (`admin tariffs set withdrawal-atm`), daily limits `admin limits set`."""
    from datetime import timedelta

    cli = state(ctx)
    if expiry is not None and not 1 <= expiry <= MAX_EXPIRY_MINUTES:
        raise fail(f"a code lives between 1 minute and 24 hours (1 to {MAX_EXPIRY_MINUTES})")
    service = cli.service()
    if min_amount is None and max_amount is None and expiry is None:
        policy = service.withdrawal_policy()
    else:
        policy = service.set_withdrawal_policy(
            actor=cli.principal(),
            min_amount=None if min_amount is None else service.parse_money(min_amount),
            max_amount=None if max_amount is None else service.parse_money(max_amount),
            lifetime=None if expiry is None else timedelta(minutes=expiry),
        )
    currency = service.settings.currency
    shown = output.policy_json(policy, currency)
    if as_json:
        output.emit_json(shown)
        return
    output.print_policy(shown, currency)


def token(
    ctx: typer.Context,
    client_id: Annotated[str, typer.Option("--client-id", help="The client's id.")],
    client_secret_stdin: Annotated[
        bool, typer.Option("--client-secret-stdin", help="Read the secret from stdin.")
    ] = False,
    scope: Annotated[
        str | None, typer.Option("--scope", help="Space-separated scopes (default: all granted).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Errors as one JSON line too (the token always is).")
    ] = False,
) -> None:
    """Get an access token for an OAuth client (the client-credentials grant), as JSON."""
    if client_secret_stdin:
        secret = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        secret = str(typer.prompt("Client secret", hide_input=True))
    else:
        raise fail("no terminal to ask for the secret: use --client-secret-stdin")
    if not secret:
        raise fail("no client secret given")
    service = state(ctx).service()
    pair = service.client_token(client_id=client_id, client_secret=secret, scope=scope)
    output.emit_json(
        {
            "access_token": pair.access_token,
            "token_type": "Bearer",
            "expires_in": int((pair.access_expires_at - service.clock.now()).total_seconds()),
            "expires_at": when(pair.access_expires_at),
        }
    )
