"""mwallet serve: the HTTP services under uvicorn."""

from typing import Annotated

import typer

from mwallet.cli.context import state
from mwallet.cli.exit_codes import fail


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.")] = 8000,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service",
            help="Serve only this service (auth, wallet, payments, atm, notifications, "
            "reports); repeatable.",
        ),
    ] = None,
    rate_limit: Annotated[
        str,
        typer.Option(
            "--rate-limit",
            help="Requests each client address may make to /auth/login, /oauth/token and "
            "/atm/validate-token, as COUNT/SECONDS (per process), or off.",
        ),
    ] = "10/60",
    auth_url: Annotated[
        str | None,
        typer.Option(
            "--auth-url",
            envvar="MWALLET_AUTH_URL",
            help="The auth service's base URL (http://host:port): verify access tokens with the "
            "keys it publishes at /.well-known/jwks.json instead of reading them from the "
            "database. For processes that do not serve auth.",
        ),
    ] = None,
    jwks_min_refresh: Annotated[
        float,
        typer.Option(
            "--jwks-min-refresh",
            envvar="MWALLET_JWKS_MIN_REFRESH",
            min=0,
            help="With --auth-url: fetch the key set again for an unknown key id at most once "
            "per this many seconds.",
        ),
    ] = 10.0,
) -> None:
    """Serve the HTTP API (all services, or the ones named) on the same database as the CLI.
    Several processes, one per service or copies of one, can run against one PostgreSQL."""
    import os

    import uvicorn

    from mwallet.server.app import SERVICES, RateLimit, create_app

    chosen = service or list(SERVICES)
    unknown = sorted(set(chosen) - set(SERVICES))
    if unknown:
        raise fail(f"unknown service(s): {', '.join(unknown)}; choose among {', '.join(SERVICES)}")
    try:
        limit = None if rate_limit == "off" else RateLimit.parse(rate_limit)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if auth_url is not None and "auth" in chosen:
        raise fail("--auth-url is for processes that do not serve auth: add --service to choose")
    if auth_url is not None and not auth_url.startswith(("http://", "https://")):
        raise fail(f"--auth-url must be an http:// or https:// URL, not {auth_url!r}")
    cli = state(ctx)
    wallet_service = cli.service()
    if auth_url is not None:
        from mwallet.jwks import JwksPublicKeys

        wallet_service.public_keys = JwksPublicKeys(auth_url, min_refresh=jwks_min_refresh)
    _ = wallet_service.settings  # a new database is set up now, as any first command does
    secrets = {
        name: os.environ[f"MWALLET_PROVIDER_{name.upper().replace('-', '_')}_SECRET"]
        for name in wallet_service.providers
        if f"MWALLET_PROVIDER_{name.upper().replace('-', '_')}_SECRET" in os.environ
    }
    from mwallet.notify.config import broker_url

    app = create_app(
        wallet_service, services=chosen, callback_secrets=secrets,
        relay_inbox=broker_url() is None,  # embedded: reading the inbox relays waiting events
        rate_limit=limit,
    )  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info")
