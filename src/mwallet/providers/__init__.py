"""Payment provider adapters behind `mwallet.core.services.payments.Provider` (the built-in
sandbox lives in the core: it needs nothing outside it)."""
