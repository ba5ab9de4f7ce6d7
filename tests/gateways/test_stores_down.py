"""What a signed request gets when a store the gateway needs for it does not answer: Redis (the signature claim of
a request that changes orders) or PostgreSQL (the API key, when it is not cached). Binance's 503 -1001 with a
Retry-After, never a 500: nothing was sent on, so the client may try again. Real refused connections, on ports
nobody listens on."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from gateways.binance import errors
from gateways.binance.auth import Keys
from gateways.binance.errors import ApiError
from gateways.http.app import Gateway, redis_client
from persistence.apikeys import SecretCipher
from tests.harness import free_port
from wire.config import Settings
from wire.venue import DEFAULT_VENUE, load_venue


def test_a_signature_claim_with_redis_down_is_answered_503_1001() -> None:
    gateway = Gateway(Settings(), load_venue(DEFAULT_VENUE), SecretCipher(b"k" * 32))

    async def claim() -> None:
        gateway.redis = redis_client(f"redis://127.0.0.1:{free_port()}")
        try:
            await gateway.once("key", "signature", 5_000)
        finally:
            await gateway.redis.aclose()

    with pytest.raises(ApiError) as refused:
        asyncio.run(claim())
    assert refused.value is errors.UNAVAILABLE
    assert (refused.value.status, refused.value.retry_after) == (503, 1)
    message = "Internal error; unable to process your request. Please try again."
    assert refused.value.body() == {"code": -1001, "msg": message}


def test_an_api_key_lookup_with_postgresql_down_is_answered_503_1001() -> None:
    async def lookup() -> None:
        # min_size=0: the pool connects on the first acquire, as a gateway's pool reconnects after a restart
        pool = await asyncpg.create_pool(f"postgresql://mercury@127.0.0.1:{free_port()}/mercury", min_size=0)
        try:
            await Keys(pool, SecretCipher(b"k" * 32)).get("A" * 64)
        finally:
            await pool.close()

    with pytest.raises(ApiError) as refused:
        asyncio.run(lookup())
    assert refused.value is errors.UNAVAILABLE
