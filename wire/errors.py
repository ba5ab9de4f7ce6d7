"""Mercury's exceptions. They mean a bug or an I/O failure, never bad client input (that becomes a reject
reason, see wire.reasons). The tree:

    MercuryError
    ├── MalformedMessage          bytes that do not decode to the expected message (wire.codec)
    ├── ConfigError               a missing or invalid setting or venue file (wire.config, wire.venue)
    └── SequencerError            the client library could not get an answer (client)
        ├── SequencerUnavailable  no answer within the timeout: the outcome is unknown (Binance -1007)
        └── CommandRefused        the sequencer answered MALFORMED, BUSY or UNAVAILABLE
"""

from __future__ import annotations


class MercuryError(Exception):
    pass


class MalformedMessage(MercuryError):
    pass


class ConfigError(MercuryError):
    pass


class SequencerError(MercuryError):
    pass


class SequencerUnavailable(SequencerError):
    pass


class CommandRefused(SequencerError):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"command refused ({status}): {detail}")
        self.status = status
        self.detail = detail
