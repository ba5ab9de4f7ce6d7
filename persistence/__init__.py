"""Persistence: PostgreSQL (accounts, API keys, and, with the persisters, orders, trades and the ledger) and
MongoDB (ticks and klines). The schema is managed by the numbered migrations in ``persistence/migrations``."""
