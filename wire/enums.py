"""Enumerations with explicit, stable wire numbers. A retired number is never reused."""

from __future__ import annotations

from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    LIMIT = 1
    MARKET = 2
    LIMIT_MAKER = 3  # post-only: rejected if it would take liquidity


class TimeInForce(IntEnum):
    GTC = 1
    IOC = 2
    FOK = 3


class SelfTradeMode(IntEnum):
    """What happens when an order would match a resting order of its own account (a self-trade never prints)."""

    EXPIRE_TAKER = 1  # the incoming order's remainder is canceled; fills before that point stand (the default)
    EXPIRE_MAKER = 2  # the resting order is canceled and matching goes on
    EXPIRE_BOTH = 3  # both are canceled
    NONE = 4  # no prevention: the order trades with its own account's orders like anyone's (and pays both fees)


class CancelReason(IntEnum):
    """Why an order left the book (or never rested) without filling completely."""

    USER = 1  # CancelOrder / CancelAll from the owner
    IOC_REMAINDER = 2  # the unfilled rest of an IOC or market order
    FOK_NOT_FILLABLE = 3  # a FOK order that could not fill completely at once
    SELF_TRADE = 4  # self-trade prevention removed it


class BalanceCause(IntEnum):
    """Why a balance changed (BalanceChanged.cause): what the command that changed it did to it.

    One command emits at most one BalanceChanged per (account, asset), with the final amounts; when one command
    did several things to a balance (an IOC buy locks, trades, then releases the rest) the cause is TRADE.
    """

    DEPOSIT = 1
    WITHDRAWAL = 2
    ORDER = 3  # an order of the account locked funds (placed, replaced) or released them (canceled, expired)
    TRADE = 4  # a fill settled: funds spent from the lock and received, net of the fee


class AckStatus(IntEnum):
    """The sequencer's answer to a submitted command."""

    JOURNALED = 1  # durable in the journal with the returned in_seq (see docs/operations.md)
    DUPLICATE = 2  # this request id was journaled before; in_seq is the original one
    MALFORMED = 3  # could not be decoded; nothing was journaled
    BUSY = 4  # the engine is too far behind; new orders are refused, retry later
    UNAVAILABLE = 5  # the journal could not be written; nothing was journaled, retry later
