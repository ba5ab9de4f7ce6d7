"""An account's user data stream events, as Binance sends them: ``executionReport`` for each change of one of its
orders, ``balanceUpdate`` for a deposit or withdrawal, and ``outboundAccountPosition`` with the balances a command
changed, after that command's other events (../shared/binance-subset.md section 5.2).

Built from the engine's events one at a time, with the order's state right after each event (the live state folds
them one by one), so a report's cumulative fields are those of that moment. An order that self-trade prevention
expires gets execution type TRADE_PREVENTION with Binance's prevented-match fields (``v``, ``U``, ``A``, ``B``).
"""

from __future__ import annotations

from typing import Any

from gateways.binance.views import NS_PER_MS, Formats
from persistence.pg_model import OrderRow
from wire.enums import BalanceCause, CancelReason, Side
from wire.events import (
    BalanceChanged,
    Event,
    MatchPrevented,
    OrderAccepted,
    OrderCanceled,
    OrderReplaced,
    TradeExecuted,
)

EXECUTION_TYPE = {
    CancelReason.USER: "CANCELED",
    CancelReason.IOC_REMAINDER: "EXPIRED",
    CancelReason.FOK_NOT_FILLABLE: "EXPIRED",
    CancelReason.SELF_TRADE: "TRADE_PREVENTION",
}

UserEvent = tuple[int, dict[str, Any]]  # (account, payload)


class UserEvents:
    def __init__(self, formats: Formats) -> None:
        self.formats = formats
        # order id -> the other order of its self-trade stop, from the MatchPrevented until the cancel it causes
        # (the next event or two of the same command)
        self._counter: dict[int, int] = {}

    def report(self, row: OrderRow, ev: Event, execution: str, trade: TradeExecuted | None = None,
               original_client_oid: str = "") -> dict[str, Any]:  # fmt: skip
        f = self.formats
        spec = f.specs[row.symbol]
        last_qty = last_price = last_quote = fee = 0
        fee_asset: str | None = None
        trade_id, maker = -1, False
        if trade is not None:
            maker = trade.maker_order_id == row.order_id
            buyer = row.side == Side.BUY.name
            last_qty, last_price = trade.qty, trade.price
            last_quote = trade.price * trade.qty * spec.quote_per_tick_lot
            fee = trade.maker_fee if maker else trade.taker_fee
            fee_asset = spec.base if buyer else spec.quote
            trade_id = trade.trade_id
        ms = ev.ts // NS_PER_MS
        return {
            "e": "executionReport",
            "E": ms,
            "s": row.symbol,
            "c": row.client_oid,
            "S": row.side,
            "o": row.type,
            "f": row.tif,
            "q": f.qty(spec, row.orig_qty),
            "p": f.price(spec, row.price),
            "P": f.price(spec, 0),
            "F": f.qty(spec, 0),
            "g": -1,
            "C": original_client_oid,
            "x": execution,
            "X": row.status,
            "r": "NONE",
            "i": row.order_id,
            "l": f.qty(spec, last_qty),
            "z": f.qty(spec, row.executed_qty),
            "L": f.price(spec, last_price),
            "n": f.money(fee_asset, fee) if fee_asset else "0",
            "N": fee_asset,
            "T": ms,
            "t": trade_id,
            "I": ev.out_seq,
            "w": row.status in ("NEW", "PARTIALLY_FILLED"),
            "m": maker,
            "M": False,
            "O": row.created_ts // NS_PER_MS,
            "Z": f.money(spec.quote, row.cum_quote),
            "Y": f.money(spec.quote, last_quote),
            "Q": f.money(spec.quote, row.quote_qty),
            "W": row.created_ts // NS_PER_MS,
            "V": row.stp,
        }

    def of_event(self, ev: Event, rows: dict[int, OrderRow], previous_client_oid: dict[int, str]) -> list[UserEvent]:
        """The reports one order event causes; ``rows`` hold the orders' state right after it."""
        t = type(ev)
        if t is OrderAccepted:
            row = rows[ev.order_id]  # type: ignore[union-attr]
            return [(row.account, self.report(row, ev, "NEW"))]
        if t is TradeExecuted:
            assert isinstance(ev, TradeExecuted)
            out = []
            for order_id in (ev.maker_order_id, ev.taker_order_id):
                row = rows[order_id]
                out.append((row.account, self.report(row, ev, "TRADE", ev)))
            return out
        if t is OrderCanceled:
            assert isinstance(ev, OrderCanceled)
            row = rows[ev.order_id]
            report = self.report(row, ev, EXECUTION_TYPE[ev.reason], original_client_oid=row.client_oid)
            if ev.reason is CancelReason.SELF_TRADE:
                # Binance's prevented-match fields: trade group (none), the match, the other order, what self-trade
                # prevention expired of this order in all and by this stop (the same: a stop expires all it left)
                f, spec = self.formats, self.formats.specs[row.symbol]
                report.update(u=-1, v=row.prevented_match_id, U=self._counter.pop(ev.order_id, -1),
                              A=f.qty(spec, row.prevented_qty), B=f.qty(spec, ev.leaves))  # fmt: skip
            return [(row.account, report)]
        if t is MatchPrevented:
            assert isinstance(ev, MatchPrevented)
            if ev.taker_qty:
                self._counter[ev.taker_order_id] = ev.maker_order_id
            if ev.maker_qty:
                self._counter[ev.maker_order_id] = ev.taker_order_id
            return []
        if t is OrderReplaced:
            assert isinstance(ev, OrderReplaced)
            old = rows[ev.order_id]
            if ev.kept_priority:
                return [(old.account, self.report(old, ev, "REPLACED", original_client_oid=previous_client_oid.get(
                    ev.order_id, old.client_oid)))]  # fmt: skip
            new = rows[ev.new_order_id]
            return [
                (old.account, self.report(old, ev, "CANCELED", original_client_oid=old.client_oid)),
                (new.account, self.report(new, ev, "NEW")),
            ]
        return []

    def balance_update(self, ev: BalanceChanged, delta: int) -> UserEvent | None:
        if ev.cause not in (BalanceCause.DEPOSIT, BalanceCause.WITHDRAWAL) or not delta:
            return None
        ms = ev.ts // NS_PER_MS
        return ev.account, {"e": "balanceUpdate", "E": ms, "a": ev.asset,
                            "d": self.formats.money(ev.asset, delta), "T": ms}  # fmt: skip

    def positions(self, account: int, ts: int, balances: dict[str, tuple[int, int]]) -> UserEvent:
        ms = ts // NS_PER_MS
        f = self.formats
        return account, {
            "e": "outboundAccountPosition",
            "E": ms,
            "u": ms,
            "B": [{"a": a, "f": f.money(a, free), "l": f.money(a, locked)} for a, (free, locked) in balances.items()],
        }
