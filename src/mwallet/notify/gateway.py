"""SMS and push through an HTTP gateway's webhook (JSON over HTTP, with httpx).

POST {url} with `{"id", "channel", "to", "title", "body"}`, `Authorization: Bearer <token>` and
`Idempotency-Key: <delivery id>` (a gateway that honours it sends a retried message once). A 2xx
answer is delivered; 408, 429 and 5xx, timeouts and connection errors are worth retrying; any other
4xx is permanent (the request itself is wrong: retrying cannot help).
"""

from __future__ import annotations

from dataclasses import dataclass

from mwallet.core.domain.notifications import Delivery
from mwallet.core.services.notifications import DeliveryFailed

RETRYABLE = frozenset({408, 425, 429})


@dataclass(frozen=True)
class GatewaySettings:
    url: str
    token: str | None = None
    timeout: float = 5.0


class HttpGatewaySender:
    def __init__(self, settings: GatewaySettings) -> None:
        import httpx

        self.settings = settings
        headers = {"User-Agent": "mwallet-notify"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._client = httpx.Client(
            timeout=httpx.Timeout(settings.timeout, connect=min(settings.timeout, 3.0)),
            headers=headers,
        )

    def send(self, delivery: Delivery) -> None:
        import httpx

        document = {
            "id": delivery.id,
            "channel": delivery.channel.value,
            "to": delivery.address,
            "title": delivery.title,
            "body": delivery.body,
        }
        try:
            answer = self._client.post(
                self.settings.url, json=document, headers={"Idempotency-Key": delivery.id}
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"gateway: {type(exc).__name__}: {exc}") from None
        if answer.is_success:
            return
        status = answer.status_code
        retryable = status >= 500 or status in RETRYABLE
        raise DeliveryFailed(f"gateway answered {status}", permanent=not retryable)

    def close(self) -> None:
        self._client.close()
