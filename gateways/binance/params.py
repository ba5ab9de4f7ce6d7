"""Request parameters as Binance takes them: from the query string (GET, DELETE) or the form body (POST, PUT), or
both, each name once; decimal strings converted exactly to the symbol's ticks and lots.

The raw strings are kept: a signature covers the bytes the client sent (query string, then body), never a
re-encoding of the parsed values.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import TypeVar
from urllib.parse import parse_qsl

from gateways.binance import errors
from gateways.binance.errors import ApiError
from wire.venue import SymbolSpec

E = TypeVar("E", bound=IntEnum)

CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")  # Binance's newClientOrderId alphabet and length
DECIMAL = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,20})?$")
INTEGER = re.compile(r"^-?[0-9]{1,19}$")
MAX_PARAMS = 64
# Binance takes its time parameters (timestamp, startTime, endTime) in ms or in µs: from MICROS_FROM on a time is in
# µs (ms have 13 digits until the year 5138, µs 16 since 2001). Times are held in ns in a signed 64-bit integer.
MICROS_FROM = 10**14
NS_MAX = 2**63 - 1


class Params:
    def __init__(self, query: str, body: str) -> None:
        self.query, self.body = query, body
        self.values: dict[str, str] = {}
        self.payload: str | None = None  # set when the signed payload is not the query string and body
        for raw in (query, body):
            if not raw:
                continue
            try:
                pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True, max_num_fields=MAX_PARAMS)
            except ValueError:
                raise errors.bad(
                    -1100, "Illegal characters found in the parameters: not a valid query string."
                ) from None
            for name, value in pairs:
                if name in self.values:
                    raise errors.duplicate_param(name)
                self.values[name] = value

    @classmethod
    def of_mapping(cls, values: dict[str, object], payload: str) -> Params:
        """Parameters given as JSON (the WebSocket API), with the payload their signature covers."""
        params = cls("", "")
        params.values = {k: _text(v) for k, v in values.items()}
        params.payload = payload
        return params

    def signed_payload(self) -> str:
        """What the signature covers: the query string and the body as sent, without the signature itself."""
        if self.payload is not None:
            return self.payload
        return _without_signature(self.query) + _without_signature(self.body)

    def get(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None

    def symbols(self) -> list[str] | None:
        """``symbol``, or ``symbols`` as a JSON array (``["BTCUSDT","ETHUSDT"]``), as Binance's ticker and
        exchangeInfo endpoints take them; None when neither is sent (every symbol). The names are not checked."""
        one = self.get("symbol")
        text = self.get("symbols")
        if one is not None:
            if text is not None:
                raise errors.bad(-1101, "Parameter 'symbol' and 'symbols' may not be sent together.")
            return [one]
        if text is None:
            return None
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise errors.illegal("symbols", 'expected a JSON array such as ["BTCUSDT","ETHUSDT"]')
        return names

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if not value:
            raise errors.mandatory(name)
        return value

    def integer(self, name: str, required: bool = False, low: int = 0, high: int = 2**63 - 1) -> int | None:
        text = self.required(name) if required else self.get(name)
        if text is None:
            return None
        if not INTEGER.match(text) or not low <= int(text) <= high:
            raise errors.illegal(name, f"expected an integer from {low} to {high}")
        return int(text)

    def time_ns(self, name: str, end: bool = False) -> int | None:
        """A time parameter given in ms or µs, in ns: its first ns, or with ``end`` its last (an endTime of a ms
        takes in the whole ms, as Binance's does)."""
        value = self.integer(name, low=0)
        if value is None:
            return None
        unit = 1_000 if value >= MICROS_FROM else 1_000_000
        ns = value * unit + (unit - 1 if end else 0)
        if ns > NS_MAX:
            raise errors.illegal(name, "expected a time in ms or µs since the epoch")
        return ns

    def boolean(self, name: str) -> bool:
        """A BOOLEAN parameter as Binance takes it: ``true`` or ``false`` in any case, false when absent."""
        text = self.get(name)
        if text is None:
            return False
        if text.lower() not in ("true", "false"):
            raise errors.illegal(name, "expected true or false")
        return text.lower() == "true"

    def enum(self, name: str, kind: type[E], error: ApiError, default: E | None = None) -> E:
        text = self.get(name)
        if text is None:
            if default is None:
                raise errors.mandatory(name)
            return default
        try:
            return kind[text]
        except KeyError:
            raise error from None

    def decimal(self, name: str) -> Decimal | None:
        text = self.get(name)
        if text is None:
            return None
        if not DECIMAL.match(text):
            raise errors.illegal(name, "expected a decimal number such as 0.0012")
        try:
            return Decimal(text)
        except InvalidOperation:
            raise errors.illegal(name, "expected a decimal number") from None

    def price(self, spec: SymbolSpec, name: str = "price") -> int | None:
        """Exact ticks; off the tick grid or not positive: PRICE_FILTER's error."""
        value = self.decimal(name)
        if value is None:
            return None
        ticks = value / spec.tick_size
        if ticks != ticks.to_integral_value() or ticks <= 0:
            raise errors.filter_failure("PRICE_FILTER")
        return int(ticks)

    def quantity(self, spec: SymbolSpec, market: bool, name: str = "quantity") -> int | None:
        """Exact lots; off the step grid or not positive: LOT_SIZE's (or MARKET_LOT_SIZE's) error."""
        value = self.decimal(name)
        if value is None:
            return None
        lots = value / spec.lot_size
        if lots != lots.to_integral_value() or lots <= 0:
            raise errors.filter_failure("MARKET_LOT_SIZE" if market else "LOT_SIZE")
        return int(lots)

    def client_id(self, name: str) -> str:
        text = self.get(name)
        if text is None:
            return ""
        if not CLIENT_ID.match(text):
            raise errors.illegal(name, "a client order id is 1 to 36 characters of [.A-Z:/a-z0-9_-]")
        return text


def _without_signature(raw: str) -> str:
    parts = [p for p in raw.split("&") if not p.startswith("signature=")] if raw else []
    return "&".join(parts)


def _text(value: object) -> str:
    """A JSON value as the text Binance signs: booleans true/false, numbers in decimal, arrays (``symbols``) as
    JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def ws_payload(values: dict[str, object]) -> str:
    """What a WebSocket API signature covers: every parameter but the signature, sorted by name, joined as
    ``k=v&...`` without percent-encoding."""
    return "&".join(f"{k}={_text(v)}" for k, v in sorted(values.items()) if k != "signature")
