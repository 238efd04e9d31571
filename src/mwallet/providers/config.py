"""Payment providers from the environment: for each name in `MWALLET_PROVIDERS` (comma-separated),
`MWALLET_PROVIDER_<NAME>_URL` and `MWALLET_PROVIDER_<NAME>_SECRET` (the shared HMAC secret) make an
HTTP provider of that name, which billers can then name (`admin billers add --provider NAME`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from mwallet.core.errors import ConfigurationError
from mwallet.core.services.payments import Provider


def providers_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Provider]:
    env = os.environ if environ is None else environ
    names = [name.strip().lower() for name in env.get("MWALLET_PROVIDERS", "").split(",")]
    found: dict[str, Provider] = {}
    for name in filter(None, names):
        key = name.upper().replace("-", "_")
        url = env.get(f"MWALLET_PROVIDER_{key}_URL")
        secret = env.get(f"MWALLET_PROVIDER_{key}_SECRET")
        if not url or not secret:
            raise ConfigurationError(
                f"provider {name}: set MWALLET_PROVIDER_{key}_URL and MWALLET_PROVIDER_{key}_SECRET"
            )
        from mwallet.providers.http import HttpProvider, HttpProviderSettings

        found[name] = HttpProvider(HttpProviderSettings(url, secret))
    return found
