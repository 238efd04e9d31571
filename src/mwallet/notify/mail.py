"""E-mail over SMTP (stdlib `smtplib`): one connection per batch is not kept; each delivery is one
short session. The delivery's id is the message's Message-ID, so a receiving system (or a person)
can tell a resent message from a new one."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from mwallet.core.domain.notifications import Delivery
from mwallet.core.services.notifications import DeliveryFailed


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    security: str = "starttls"  # starttls, ssl (implicit TLS, port 465) or none
    sender: str = "mwallet <no-reply@mwallet.invalid>"
    timeout: float = 10.0


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def message(self, delivery: Delivery) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = delivery.address
        message["Subject"] = delivery.title
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = f"<{delivery.id}@mwallet>"
        message.set_content(f"{delivery.body}\n\n-- \nmwallet\n")
        return message

    def send(self, delivery: Delivery) -> None:
        settings = self.settings
        try:
            if settings.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, settings.port, timeout=settings.timeout,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if settings.username:
                    client.login(settings.username, settings.password or "")
                client.send_message(self.message(delivery))
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryFailed(
                f"the SMTP server refused {delivery.address}: {codes}",
                permanent=all(500 <= code < 600 for code in codes),
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"SMTP {exc.smtp_code}: {exc.smtp_error!r}",
                permanent=500 <= exc.smtp_code < 600,  # RFC 5321: every 5yz reply is permanent
            ) from None
        except smtplib.SMTPNotSupportedError as exc:  # e.g. an address needing SMTPUTF8
            raise DeliveryFailed(f"SMTP: {exc}", permanent=True) from None
        except (OSError, smtplib.SMTPException) as exc:  # unreachable, timed out, dropped
            raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from None
