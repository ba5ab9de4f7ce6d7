"""The base of every command and event: a frozen msgspec Struct encoded as ``[tag, field, ...]``."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, array_like=True, frozen=True, gc=False, tag_field="kind"):
    """Subclasses set ``tag=<stable int>``; gc=False because messages hold only scalars and strings."""
