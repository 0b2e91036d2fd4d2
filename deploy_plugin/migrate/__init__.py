"""Applying tracked migrations: the executor (one per driver), the ledger, the runner."""
