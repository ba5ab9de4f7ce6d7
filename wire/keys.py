"""Redis key names. Each carries the engine shard as a hash tag (``{e0}``) so that a Redis Cluster keeps one
engine's journal, events and snapshot on one node (multi-key operations stay legal)."""

from __future__ import annotations


def journal(shard: str) -> str:
    return f"mercury:{{{shard}}}:journal"


def events(shard: str) -> str:
    return f"mercury:{{{shard}}}:events"


def snapshot(shard: str) -> str:
    return f"mercury:{{{shard}}}:snapshot"


def consumers(shard: str) -> str:
    """Hash: consumer name -> the last out_seq it has durably applied. The events stream is trimmed below the
    smallest (persistence.stream)."""
    return f"mercury:{{{shard}}}:consumers"


def consumer_leases(shard: str) -> str:
    """Hash: consumer name -> when its registration lapses (ms since the epoch) unless it confirms again. Live
    readers (gateways) register this way, so that one that dies stops holding the stream back; persisters do not."""
    return f"mercury:{{{shard}}}:consumer-leases"
