"""The remote CLI's adapter: the user commands' service interface over the HTTP API."""

from mwallet.remote.client import HttpWalletService

__all__ = ["HttpWalletService"]
