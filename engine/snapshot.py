"""The engine's whole state as one msgpack document, written at a known in_seq.

Orders are stored in ascending order id. That is also their time priority within each level: an order's id is the
in_seq of the command that created it (gap-free and increasing, one order at most per command), so ids grow with
acceptance time, and an order that loses priority gets a new id, the in_seq of that replace. Appending them in that
order therefore rebuilds every FIFO, every index and every future event exactly. There is no order id counter to
store: the next id is the next command's in_seq.
"""

from __future__ import annotations

import msgspec

from wire.enums import OrderType, SelfTradeMode, Side, TimeInForce

FORMAT_VERSION = 5
# 1 had no accounts, 2 no order locks or fees: their journals give other events under today's rules (orders from
# unfunded accounts are now rejected), so an engine that restored them would diverge from its own events stream.
# 3 numbered orders from a counter it stored (next_order_id); today an order's id is its command's in_seq, so the
# commands after a version 3 snapshot give other order ids than the events stream already holds for them.
# 4 emitted no MatchPrevented (and stored no prevented_id): a journal with a self-trade stop replays with more
# events, so every later out_seq differs from its events stream's
READABLE_VERSIONS = (5,)


class OrderState(msgspec.Struct, array_like=True, frozen=True, gc=False):
    order_id: int
    account: int
    side: Side
    price: int
    leaves: int
    client_oid: str
    type: OrderType
    tif: TimeInForce
    stp: SelfTradeMode = SelfTradeMode.EXPIRE_TAKER


class SymbolState(msgspec.Struct, array_like=True, frozen=True):
    symbol: str
    update_id: int
    trade_id: int
    last_price: int
    orders: list[OrderState]
    prevented_id: int


class BalanceState(msgspec.Struct, array_like=True, frozen=True, gc=False):
    asset: str
    free: int
    locked: int


class AccountState(msgspec.Struct, array_like=True, frozen=True):
    account: int
    balances: list[BalanceState]  # sorted by asset


class FeeOverrideState(msgspec.Struct, array_like=True, frozen=True, gc=False):
    account: int
    maker_bps: int
    taker_bps: int


class EngineState(msgspec.Struct, array_like=True, frozen=True):
    version: int
    in_seq: int
    out_seq: int
    symbols: list[SymbolState]
    accounts: list[AccountState]  # sorted by account
    risk: bool  # False only for matching-only engines (tests, benchmarks)
    fee_overrides: list[FeeOverrideState]  # sorted by account


class _Version(msgspec.Struct, array_like=True, frozen=True):
    """The leading version of any format: read first, because an older format's fields do not decode as today's."""

    version: int


encode_state = msgspec.msgpack.Encoder().encode
decode_state = msgspec.msgpack.Decoder(EngineState).decode
_decode_version = msgspec.msgpack.Decoder(_Version).decode


def state_version(data: bytes) -> int:
    return _decode_version(data).version
