"""Where notifications go, from the environment.

- `MWALLET_BROKER` (e.g. `amqp://guest:guest@127.0.0.1:5672//`): the relay publishes events to it
  and workers consume them (exchange and queues named after `MWALLET_BROKER_PREFIX`, default
  `mwallet`). Unset (the embedded default): the relay turns events into deliveries itself,
  in-process.
- `MWALLET_SMTP_URL`: e-mail over SMTP, `smtp://user:password@host:587` (STARTTLS),
  `smtps://…:465` (implicit TLS) or `smtp+plain://host:25` (no TLS: a local relay only); the
  sender address from `MWALLET_MAIL_FROM`.
- `MWALLET_SMS_URL` / `MWALLET_PUSH_URL` (and `MWALLET_SMS_TOKEN` / `MWALLET_PUSH_TOKEN`): the
  gateways' webhooks.
- A channel with nothing configured goes to a spool folder, `MWALLET_HOME/spool/<channel>/`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from mwallet.core.domain.notifications import Channel
from mwallet.core.errors import ConfigurationError
from mwallet.core.services.notifications import Sender

if TYPE_CHECKING:
    from mwallet.notify.mail import SmtpSettings

BROKER_ENV = "MWALLET_BROKER"
SMTP_ENV = "MWALLET_SMTP_URL"


def broker_url() -> str | None:
    return os.environ.get(BROKER_ENV) or None


def broker_prefix() -> str:
    """What the broker's exchanges and queues are called after (MWALLET_BROKER_PREFIX)."""
    return os.environ.get("MWALLET_BROKER_PREFIX") or "mwallet"


def smtp_settings(url: str, sender: str | None = None) -> SmtpSettings:
    from mwallet.notify.mail import SmtpSettings

    parts = urlsplit(url)
    security = {"smtp": "starttls", "smtps": "ssl", "smtp+plain": "none"}.get(parts.scheme)
    if security is None or not parts.hostname:
        raise ConfigurationError(f"{SMTP_ENV}: write smtp://, smtps:// or smtp+plain://host:port")
    default_port = {"starttls": 587, "ssl": 465, "none": 25}[security]
    return SmtpSettings(
        host=parts.hostname,
        port=parts.port or default_port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        security=security,
        sender=sender or "mwallet <no-reply@mwallet.invalid>",
    )


def senders(home: Path, environ: dict[str, str] | None = None) -> dict[Channel, Sender]:
    """A sender for each channel a worker sends on."""
    from mwallet.notify.spool import SpoolSender

    env = dict(os.environ) if environ is None else environ
    chosen: dict[Channel, Sender] = {}
    if url := env.get(SMTP_ENV):
        from mwallet.notify.mail import SmtpSender

        chosen[Channel.EMAIL] = SmtpSender(smtp_settings(url, env.get("MWALLET_MAIL_FROM")))
    for channel in (Channel.SMS, Channel.PUSH):
        name = channel.value.upper()
        if url := env.get(f"MWALLET_{name}_URL"):
            from mwallet.notify.gateway import GatewaySettings, HttpGatewaySender

            chosen[channel] = HttpGatewaySender(
                GatewaySettings(url, env.get(f"MWALLET_{name}_TOKEN"))
            )
    for channel in (Channel.EMAIL, Channel.SMS, Channel.PUSH):
        chosen.setdefault(channel, SpoolSender(home / "spool", channel))
    return chosen
