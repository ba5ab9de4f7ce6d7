"""Binance's request signing: the API key in ``X-MBX-APIKEY``, a signature over the exact query string and body,
``timestamp`` within ``recvWindow`` of the server's clock.

HMAC-SHA256 keys sign with their secret (lowercase hex); Ed25519 keys sign with their private key (base64), and the
server holds only the public key. Keys come from PostgreSQL (persistence.apikeys), cached for a short while so that
a revocation takes effect within ``KEY_TTL`` seconds without a database round trip on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateways.binance import errors
from gateways.binance.params import Params
from persistence.apikeys import ApiKey, SecretCipher, lookup

KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{16,128}$")
KEY_TTL = 5.0  # s a key (or its absence) is cached
MAX_RECV_WINDOW = 60_000_000  # µs (60 s), Binance's cap
DEFAULT_RECV_WINDOW = 5_000_000  # µs
AHEAD_TOLERANCE = 1_000_000  # µs a timestamp may be ahead of the server's clock
# Binance takes recvWindow in ms with up to three decimals (timestamp in ms or µs: Params.time_ns)
RECV_WINDOW = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,3})?$")


@dataclass(frozen=True, slots=True)
class Caller:
    key_id: str
    account: int


class Keys:
    def __init__(self, pool: asyncpg.Pool, cipher: SecretCipher) -> None:
        self.pool = pool
        self.cipher = cipher
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

    async def get(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            async with self.pool.acquire() as conn:
                key = await lookup(conn, self.cipher, key_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:  # PostgreSQL down or restarting
            raise errors.UNAVAILABLE from exc
        if len(self._cache) > 100_000:  # unknown keys must not grow the cache without bound
            self._cache.clear()
        self._cache[key_id] = (now + KEY_TTL, key)
        return key


def api_key_of(header: str | None) -> str:
    if not header or not KEY_FORMAT.match(header):
        raise errors.KEY_FORMAT
    return header


Once = Callable[[str, str, int], Awaitable[bool]]


async def authenticate(keys: Keys, header: str | None, params: Params, now_ms: int, once: Once | None = None) -> Caller:
    """The caller of a signed request, or the ApiError Binance would answer. With ``once`` (for requests that change
    orders), the signature must also be new: ``once(key id, signature, ms it stays valid)`` claims it, and a request
    sent again while its timestamp is still inside its recvWindow is refused. Binance accepts such a replay; a
    venue that must not place the same order twice cannot."""
    key = await keys.get(api_key_of(header))
    if key is None or key.revoked_at is not None:
        raise errors.KEY_REFUSED
    signature = params.get("signature")
    if signature is None:
        raise errors.mandatory("signature")
    timestamp, window = _timing(params)
    payload = params.signed_payload().encode()
    if not _verified(key, payload, signature):
        raise errors.BAD_SIGNATURE
    _check_time(timestamp, window, now_ms)
    valid_ms = (timestamp + window) // 1000 - now_ms + 1  # how long a replay of it would still be inside its window
    if once is not None and not await once(key.key_id, signature.lower(), valid_ms):
        raise errors.REPLAYED
    return Caller(key.key_id, key.account)


async def session_caller(keys: Keys, key_id: str, params: Params, now_ms: int, timed: bool = True) -> Caller:
    """The caller of a request without apiKey and signature on a WebSocket API session logged on with ``key_id``
    (``session.logon``): the key must still be valid (a revocation ends the session's rights within KEY_TTL) and,
    ``timed``, ``timestamp`` within ``recvWindow`` as for a signed request."""
    key = await keys.get(key_id)
    if key is None or key.revoked_at is not None:
        raise errors.KEY_REFUSED
    if timed:
        timestamp, window = _timing(params)
        _check_time(timestamp, window, now_ms)
    return Caller(key.key_id, key.account)


def _timing(params: Params) -> tuple[int, int]:
    """``timestamp`` and ``recvWindow`` in µs."""
    ns = params.time_ns("timestamp")  # ms or µs, by Params' rule
    if ns is None:
        raise errors.mandatory("timestamp")
    timestamp = ns // 1000
    text = params.get("recvWindow")
    if text is None:
        return timestamp, DEFAULT_RECV_WINDOW
    if not RECV_WINDOW.match(text):
        raise errors.illegal("recvWindow", "expected milliseconds with at most three decimals")
    whole, _, fraction = text.partition(".")
    window = int(whole) * 1000 + int(fraction.ljust(3, "0"))
    if window > MAX_RECV_WINDOW:
        raise errors.RECV_WINDOW_TOO_BIG
    if window == 0:
        raise errors.illegal("recvWindow", "expected more than 0")
    return timestamp, window


def _check_time(timestamp: int, window: int, now_ms: int) -> None:
    """Binance's rule, in µs: not ahead of the server by a second or more, not older than the window."""
    now = now_ms * 1000
    if timestamp >= now + AHEAD_TOLERANCE:
        raise errors.AHEAD_OF_SERVER
    if now - timestamp > window:
        raise errors.OUTSIDE_WINDOW


def _verified(key: ApiKey, payload: bytes, signature: str) -> bool:
    if not signature.isascii():  # compare_digest refuses non-ASCII text (a TypeError, found by schemathesis)
        return False
    if key.kind == "HMAC":
        assert key.secret is not None
        expected = hmac.new(key.secret.encode(), payload, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature.lower())
    assert key.public_key is not None
    try:
        raw = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(key.public_key).verify(raw, payload)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
