"""Every reason the engine or the sequencer refuses a command: one enum, grouped by the stage that refuses.

| range | stage |
| --- | --- |
| 1xxx | shape and validation (symbol, grid, limits) |
| 2xxx | risk (accounts and balances) |
| 3xxx | matching (unknown order, post-only, FOK, ...) |
| 9xxx | system |

Gateways translate these codes in one table per protocol; the numbers are stable and never reused.
"""

from __future__ import annotations

from enum import IntEnum


class RejectReason(IntEnum):
    # 1xxx: validation
    UNKNOWN_SYMBOL = 1001
    PRICE_NOT_POSITIVE = 1002
    PRICE_OFF_TICK = 1003  # kept for gateways that see decimals: the engine's prices are ticks already
    QTY_NOT_POSITIVE = 1004
    QTY_BELOW_MIN = 1005
    QTY_ABOVE_MAX = 1006
    NOTIONAL_BELOW_MIN = 1007
    PRICE_OUT_OF_BAND = 1008
    INVALID_ORDER_TYPE = 1009  # e.g. a market order with GTC, a post-only with IOC
    DUPLICATE_CLIENT_ORDER_ID = 1010
    PRICE_TOO_HIGH = 1011  # above the venue's absolute price bound
    INVALID_FIELD = 1012  # a field with a value outside its domain (empty client order id, ...)
    UNKNOWN_ASSET = 1013
    AMOUNT_NOT_POSITIVE = 1014
    # 2xxx: risk (accounts)
    INSUFFICIENT_BALANCE = 2001  # the order's lock (or a withdrawal) exceeds the account's free balance
    UNKNOWN_ACCOUNT = 2002
    ACCOUNT_EXISTS = 2003
    # 3xxx: matching
    UNKNOWN_ORDER = 3001
    POST_ONLY_WOULD_TAKE = 3002
    # 3003 is not a reject: a FOK that cannot fill is canceled (CancelReason.FOK_NOT_FILLABLE), as Binance expires it
    REPLACE_NO_CHANGE = 3004
    # 9xxx: system
    MALFORMED = 9001  # not a command: undecodable bytes or wrong field types
