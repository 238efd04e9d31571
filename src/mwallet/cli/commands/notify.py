"""mwallet inbox, mwallet notify …, mwallet admin notify …: notifications."""

import sys
import time
from typing import Annotated, Any

import typer

from mwallet.cli import output
from mwallet.cli.context import JsonFlag, state
from mwallet.cli.exit_codes import fail
from mwallet.core.errors import WalletError

inbox_app = typer.Typer(help="Your notifications, newest first.", no_args_is_help=False)
notify_app = typer.Typer(help="Notification preferences, the relay and the worker.",
                         no_args_is_help=True)  # fmt: skip
notify_admin_app = typer.Typer(help="Notification statistics and dead letters.",
                               no_args_is_help=True)  # fmt: skip
dlq_app = typer.Typer(help="Deliveries that failed for good.", no_args_is_help=True)
notify_admin_app.add_typer(dlq_app, name="dlq")

OnOff = Annotated[str | None, typer.Option(help="on or off")]


def _relay_here(cli: Any) -> int:
    """Embedded mode (no broker): move waiting events into deliveries before reading them."""
    from mwallet.notify.config import broker_url

    if broker_url() is not None or cli.server is not None:  # a server relays its own
        return 0
    return int(cli.service().relay_notifications())


@inbox_app.callback(invoke_without_command=True)
def inbox(
    ctx: typer.Context,
    unread: Annotated[bool, typer.Option("--unread", help="Only what you have not read.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="How many (1-1000).")] = 20,
    before: Annotated[
        str | None, typer.Option("--before", help="The page after this notification id.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List your notifications (mwallet inbox read ID marks one read)."""
    if ctx.invoked_subcommand is not None:
        return
    cli = state(ctx)
    principal = cli.principal()
    _relay_here(cli)
    found = cli.user_service().inbox(principal, unread_only=unread, limit=limit, before=before)
    if as_json:
        output.emit_json([output.notification_json(one) for one in found])
        return
    output.print_inbox(found)


@inbox_app.command("read")
def inbox_read(
    ctx: typer.Context,
    notification_id: Annotated[str, typer.Argument(help="The notification's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Show one notification and mark it read."""
    cli = state(ctx)
    found = cli.user_service().mark_read(cli.principal(), notification_id=notification_id)
    if as_json:
        output.emit_json(output.notification_json(found))
        return
    output.console().print(f"[bold]{found.title}[/bold]\n{found.body}")


def _switch(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("on", "yes", "true", "1"):
        return True
    if value.lower() in ("off", "no", "false", "0"):
        return False
    raise fail(f"--{name} takes on or off, not {value!r}")


@notify_app.command("prefs")
def prefs(
    ctx: typer.Context,
    language: Annotated[str | None, typer.Option("--language", help="en, pt-MZ or pt-BR.")] = None,
    email: OnOff = None,
    sms: OnOff = None,
    push: OnOff = None,
    as_json: JsonFlag = False,
) -> None:
    """Show your notification preferences; change the ones given (security notices always go
    out)."""
    cli = state(ctx)
    principal = cli.principal()
    wanted = {"email": _switch("email", email), "sms": _switch("sms", sms),
              "push": _switch("push", push)}  # fmt: skip
    people = cli.user_service()
    if language is None and all(value is None for value in wanted.values()):
        found = people.notification_preferences(principal)
    else:
        found = people.set_notification_preferences(principal, language=language, **wanted)
    from mwallet.render.notifications import preferences_json

    document = preferences_json(found)
    if as_json:
        output.emit_json(document)
        return
    switches = ", ".join(
        f"{name} {'on' if document[name] else 'off'}" for name in ("email", "sms", "push")
    )
    output.console().print(f"Language {found.language}; inbox on, {switches}")


@notify_app.command("relay")
def relay(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then stop.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Move recorded events on: to the broker (MWALLET_BROKER), or into deliveries here."""
    from mwallet.notify.config import broker_prefix, broker_url

    cli = state(ctx)
    service = cli.service()
    url = broker_url()
    publisher = None
    if url is not None:
        from mwallet.notify.broker import AmqpPublisher

        publisher = AmqpPublisher(url, prefix=broker_prefix())
    moved = 0
    pause = _Pause()
    try:
        while True:
            try:
                moved += service.relay_notifications(publisher.sink if publisher else None)
            except WalletError as error:
                if once:
                    raise
                pause.failed(error)  # the broker is down: events wait in the outbox
                continue
            if once:
                break
            pause.idle()
    finally:
        if publisher is not None:
            publisher.close()
    if as_json:
        output.emit_json({"relayed": moved})
        return
    output.console().print(f"Relayed {moved} event(s).")


class _Pause:
    """How a long-running relay or worker waits: briefly when idle, longer (up to 30 s) after
    each failure in a row, telling stderr once per failure."""

    def __init__(self) -> None:
        self.failures = 0

    def idle(self) -> None:
        self.failures = 0
        time.sleep(0.5)

    def failed(self, error: Exception) -> None:
        self.failures += 1
        delay = min(0.5 * 2**self.failures, 30.0)
        print(f"warning: {error} (trying again in {delay:.0f} s)", file=sys.stderr)
        time.sleep(delay)


@notify_app.command("worker")
def worker(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then stop.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Turn events into deliveries (from the broker, or embedded from the outbox) and send due
    e-mails, SMS and push messages."""
    from mwallet.notify.config import broker_prefix, broker_url, senders

    cli = state(ctx)
    service = cli.service()
    chosen = senders(cli.home)
    url = broker_url()
    consumer = None
    if url is not None:
        from mwallet.notify.broker import AmqpConsumer

        consumer = AmqpConsumer(url, prefix=broker_prefix())
    total = {"accepted": 0, "sent": 0, "retrying": 0, "dead": 0}
    pause = _Pause()
    while True:
        try:
            if consumer is not None:
                total["accepted"] += consumer.drain(service.accept_notifications, seconds=0.5)
            else:
                total["accepted"] += _relay_here(cli)
            report = service.dispatch_notifications(chosen)
        except WalletError as error:
            if once:
                raise
            pause.failed(error)
            continue
        total["sent"] += report.sent
        total["retrying"] += report.retrying
        total["dead"] += report.dead
        if once:
            break
        if report.attempted == 0:
            pause.idle()
    if as_json:
        output.emit_json(total)
        return
    output.console().print(
        f"Took {total['accepted']} event(s); sent {total['sent']}, "
        f"retrying {total['retrying']}, dead-lettered {total['dead']}."
    )


@notify_admin_app.command("stats")
def stats(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Deliveries per channel and state, the oldest waiting, and the outbox's backlog."""
    cli = state(ctx)
    found = cli.service().notification_stats(actor=cli.principal())
    document = output.notify_stats_json(found)
    if as_json:
        output.emit_json(document)
        return
    output.print_notify_stats(document)


@dlq_app.command("list")
def dlq_list(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Deliveries that failed for good, with their last error."""
    cli = state(ctx)
    found = cli.service().dead_notifications(actor=cli.principal())
    if as_json:
        output.emit_json([output.notification_json(one) for one in found])
        return
    output.print_dead_letters(found)


@dlq_app.command("retry")
def dlq_retry(
    ctx: typer.Context,
    notification_id: Annotated[str, typer.Argument(help="The dead-lettered delivery's id.")],
    as_json: JsonFlag = False,
) -> None:
    """Queue a dead-lettered delivery again (once its cause is fixed)."""
    cli = state(ctx)
    found = cli.service().retry_notification(actor=cli.principal(), notification_id=notification_id)
    if as_json:
        output.emit_json(output.notification_json(found))
        return
    output.console().print(f"Queued {found.id} again ({found.channel.value} to {found.address}).")
