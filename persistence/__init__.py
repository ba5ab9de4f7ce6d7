"""Persisters (PostgreSQL, MongoDB) that consume the engine's events stream. Built by a later issue."""
