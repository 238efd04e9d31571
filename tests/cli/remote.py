"""The remote door under test: one real HTTP server (uvicorn on a free port, in a thread of the
test process) for the whole session, serving each test's own database in turn.

A remote test runs the same scenario as its local twin, with `MWALLET_SERVER` pointing here: the
CLI's user commands go over HTTP to the services on the test's database, while the test's own
set-up and checks read that database directly as before.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

import mwallet.remote  # noqa: F401 - loaded once here, not in each forked command
from mwallet.bootstrap import Wallet, build_wallet
from mwallet.server.app import create_app
from tests.support import TEST_KEYRING

# The remote CLI polls for its device login this often (seconds): the real server's pace is 5.
DEVICE_INTERVAL = 1
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Switchboard:
    """An ASGI app that hands each request to the app of the test running now."""

    def __init__(self) -> None:
        self.app: Callable[[Scope, Receive, Send], Awaitable[None]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:  # between tests
            raise RuntimeError("no test is being served")
        await self.app(scope, receive, send)


class WalletServer:
    """`mwallet serve`'s app under uvicorn, on 127.0.0.1 and a port of its own."""

    def __init__(self) -> None:
        self.switchboard = Switchboard()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        config = uvicorn.Config(self.switchboard, log_level="warning", lifespan="off", ws="none",
                                http="h11", access_log=False)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )
        self._wallet: Wallet | None = None

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 30  # a safety net, not a timing assertion
        while not self._server.started:
            assert self._thread.is_alive(), "uvicorn stopped"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def serve(self, db_url: str) -> str:
        """Serve the services on `db_url` (as `mwallet serve` builds them) until `stop_serving`."""
        self._wallet = build_wallet(db_url, secrets=TEST_KEYRING)
        self.switchboard.app = create_app(
            self._wallet.service, relay_inbox=True, rate_limit=None,
            device_interval=DEVICE_INTERVAL,
        )  # fmt: skip
        return self.url

    def stop_serving(self) -> None:
        self.switchboard.app = None
        if self._wallet is not None:
            self._wallet.close()
            self._wallet = None

    def stop(self) -> None:
        self.stop_serving()
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
