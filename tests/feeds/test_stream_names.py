"""Stream names as Binance spells them, and what each bad one is refused with."""

from __future__ import annotations

import pytest

from feeds.streams import BadStream, Stream, parse

SYMBOLS = frozenset({"BTCUSDT", "ETHUSDT"})


@pytest.mark.parametrize(
    ("name", "stream"),
    [
        ("btcusdt@depth", Stream("btcusdt@depth", "depth", "BTCUSDT", rate=1000)),
        ("btcusdt@depth@100ms", Stream("btcusdt@depth@100ms", "depth", "BTCUSDT", rate=100)),
        ("btcusdt@depth@1000ms", Stream("btcusdt@depth@1000ms", "depth", "BTCUSDT", rate=1000)),
        ("btcusdt@depth@0ms", Stream("btcusdt@depth@0ms", "depth", "BTCUSDT", rate=0)),
        ("ethusdt@depth5", Stream("ethusdt@depth5", "partial", "ETHUSDT", rate=1000, levels=5)),
        ("ethusdt@depth20@100ms", Stream("ethusdt@depth20@100ms", "partial", "ETHUSDT", rate=100, levels=20)),
        ("btcusdt@trade", Stream("btcusdt@trade", "trade", "BTCUSDT")),
        ("btcusdt@aggTrade", Stream("btcusdt@aggTrade", "aggTrade", "BTCUSDT")),
        ("btcusdt@kline_4h", Stream("btcusdt@kline_4h", "kline", "BTCUSDT", arg="4h")),
        ("btcusdt@miniTicker", Stream("btcusdt@miniTicker", "miniTicker", "BTCUSDT")),
        ("btcusdt@ticker", Stream("btcusdt@ticker", "ticker", "BTCUSDT")),
        ("btcusdt@bookTicker", Stream("btcusdt@bookTicker", "bookTicker", "BTCUSDT")),
        ("!miniTicker@arr", Stream("!miniTicker@arr", "allMiniTicker", "")),
        ("!ticker@arr", Stream("!ticker@arr", "allTicker", "")),
        ("btcusdt@ticker_1h", Stream("btcusdt@ticker_1h", "windowTicker", "BTCUSDT", arg="1h")),
        ("ethusdt@ticker_4h", Stream("ethusdt@ticker_4h", "windowTicker", "ETHUSDT", arg="4h")),
        ("!ticker_1d@arr", Stream("!ticker_1d@arr", "allWindowTicker", "", arg="1d")),
    ],
)
def test_binances_stream_names_parse(name: str, stream: Stream) -> None:
    assert parse(name, SYMBOLS) == stream


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("dogeusdt@trade", "unknown symbol"),
        ("btcusdt@trades", "invalid stream name"),
        ("BTCUSDT@trade", "invalid stream name"),  # Binance's names are lower case
        ("btcusdt@kline_2m", "unknown kline interval"),
        ("btcusdt@depth7", "invalid stream name"),
        ("btcusdt@depth5@0ms", "every 100 or 1000 ms"),
        ("btcusdt@depth@10ms", "invalid stream name"),
        ("btcusdt@ticker_2h", "invalid stream name"),  # Binance's window streams: 1h, 4h and 1d
        ("!ticker_2h@arr", "invalid stream name"),
        ("", "invalid stream name"),
    ],
)
def test_a_bad_stream_name_is_refused_with_the_reason(name: str, why: str) -> None:
    with pytest.raises(BadStream, match=why):
        parse(name, SYMBOLS)
