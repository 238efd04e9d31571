"""Pure rules of the wallet: money, the ledger, users and transfers. Imports no framework."""
