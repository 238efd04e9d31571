"""A person's notification preferences as a document, as `mwallet notify prefs --json` prints
it and `GET /notifications/preferences` serves it."""

from __future__ import annotations

from typing import Any

from mwallet.core.domain.notifications import Preferences


def preferences_json(found: Preferences) -> dict[str, Any]:
    return {"language": found.language, "email": found.email, "sms": found.sms,
            "push": found.push}  # fmt: skip
