"""wire.codec: every message round-trips, tags are stable numbers, and anything else is MalformedMessage."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest

from wire.codec import (
    Ack,
    Heartbeat,
    JournalBatch,
    RawJournalBatch,
    decode_ack,
    decode_batch,
    decode_command,
    decode_events,
    decode_heartbeat,
    encode,
)
from wire.commands import CancelAll, CancelOrder, Command, PlaceOrder, ReplaceOrder, TakeSnapshot
from wire.enums import AckStatus, CancelReason, OrderType, SelfTradeMode, Side, TimeInForce
from wire.errors import MalformedMessage
from wire.events import (
    BookDelta,
    CancelRejected,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderReplaced,
    TradeExecuted,
)
from wire.reasons import RejectReason

PLACE = PlaceOrder("gw1", 7, 42, "BTCUSDT", Side.SELL, OrderType.LIMIT_MAKER, TimeInForce.GTC, 10_050, 3, "my-1")
COMMANDS: list[Command] = [
    PLACE,
    CancelOrder("gw1", 8, 42, "BTCUSDT", 17, "my-1"),
    ReplaceOrder("gw2", 1, 42, "ETHUSDT", 0, "my-1", "my-2", 99, 5),
    CancelAll("fix-3", 2**40, 42, "BTCUSDT"),
    TakeSnapshot("ops", 1),
]
EVENTS: list[Event] = [
    OrderAccepted(
        1, 10, 1_700_000_000_000_000_000, "BTCUSDT", 5, 42, "c", Side.BUY, OrderType.MARKET, TimeInForce.FOK, 0, 9
    ),
    OrderRejected(2, 11, 5, "BTCUSDT", 42, "", RejectReason.PRICE_OUT_OF_BAND, "price=1 band=[90,110] last=100"),
    TradeExecuted(3, 12, 5, "BTCUSDT", 1, 100, 2, Side.SELL, 5, 42, 7, 6, 43, 0),
    OrderCanceled(4, 12, 5, "BTCUSDT", 6, 43, "x", 1, CancelReason.SELF_TRADE),
    OrderReplaced(5, 13, 5, "ETHUSDT", 6, 9, 43, "y", 101, 4, False),
    CancelRejected(6, 14, 5, "ETHUSDT", 43, 9, "y", RejectReason.UNKNOWN_ORDER, "order_id=9 client_oid='y'"),
    BookDelta(7, 14, 5, "ETHUSDT", 3, Side.BUY, 101, 0),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: type(c).__name__)
def test_command_round_trips_when_encoded_and_decoded(cmd: Command) -> None:
    decoded = decode_command(encode(cmd))

    assert decoded == cmd
    assert type(decoded) is type(cmd)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_event_round_trips_when_encoded_alone_in_a_batch(event: Event) -> None:
    decoded = decode_events(encode([event]))

    assert decoded == [event]
    assert type(decoded[0]) is type(event)


def test_event_batch_round_trips_when_it_holds_every_event_type() -> None:
    assert decode_events(encode(EVENTS)) == EVENTS
    assert decode_events(encode([])) == []


def test_journal_batch_round_trips_with_every_command_type() -> None:
    batch = JournalBatch(first_in_seq=1_001, stamps=[10, 11, 12, 13, 14], cmds=COMMANDS)

    assert decode_batch(encode(batch)) == batch


@pytest.mark.parametrize("ack", [Ack(7, AckStatus.JOURNALED, 1_001), Ack(8, AckStatus.BUSY, 0, "engine 200000 behind")])
def test_ack_round_trips(ack: Ack) -> None:
    assert decode_ack(encode(ack)) == ack


def test_ack_without_detail_decodes_with_empty_detail() -> None:
    assert decode_ack(msgspec.msgpack.encode([7, 2, 55])) == Ack(7, AckStatus.DUPLICATE, 55, "")


def test_heartbeat_round_trips() -> None:
    assert decode_heartbeat(encode(Heartbeat(in_seq=12, out_seq=40))) == Heartbeat(12, 40)


# ---- the wire format is stable numbers, not names -------------------------------------------------------------


def test_command_encodes_as_an_array_led_by_its_tag_with_enums_as_integers() -> None:
    raw = msgspec.msgpack.decode(encode(PLACE))

    assert raw == [1, "gw1", 7, 42, "BTCUSDT", 2, 3, 1, 10_050, 3, "my-1", 1, 0]  # stp EXPIRE_TAKER, quote_qty 0


def test_place_order_without_trailing_stp_decodes_with_the_default() -> None:
    # a frame from a client that predates the field: trailing fields with defaults may be left out
    cmd = decode_command(msgspec.msgpack.encode([1, "gw1", 7, 42, "BTCUSDT", 2, 3, 1, 10_050, 3, "my-1"]))
    assert isinstance(cmd, PlaceOrder) and cmd.stp is SelfTradeMode.EXPIRE_TAKER


@pytest.mark.parametrize(
    ("message", "tag"),
    [(c, t) for c, t in zip(COMMANDS, [1, 2, 3, 4, 9], strict=True)]
    + [(e, t) for e, t in zip(EVENTS, [101, 102, 103, 104, 105, 106, 107], strict=True)],
    ids=lambda v: type(v).__name__ if not isinstance(v, int) else str(v),
)
def test_message_tag_is_its_stable_number(message: Command | Event, tag: int) -> None:
    assert msgspec.msgpack.decode(encode(message))[0] == tag


def test_command_decoder_ignores_trailing_fields_appended_by_a_later_version() -> None:
    data = msgspec.msgpack.encode([4, "gw", 1, 7, "BTCUSDT", "a field from the future"])

    assert decode_command(data) == CancelAll("gw", 1, 7, "BTCUSDT")


# ---- raw batches ------------------------------------------------------------------------------------------------


def test_raw_journal_batch_encodes_byte_identically_to_the_journal_batch() -> None:
    stamps = [10, 11, 12, 13, 14]
    raw = RawJournalBatch(1_001, stamps, [msgspec.Raw(encode(c)) for c in COMMANDS])

    data = encode(raw)

    assert data == encode(JournalBatch(1_001, stamps, COMMANDS))
    assert decode_batch(data) == JournalBatch(1_001, stamps, COMMANDS)


# ---- malformed input ------------------------------------------------------------------------------------------

PLACE_FIELDS: list[object] = [1, "gw1", 7, 42, "BTCUSDT", 2, 3, 1, 10_050, 3, "my-1"]


def with_field(index: int, value: object) -> bytes:
    fields = list(PLACE_FIELDS)
    fields[index] = value
    return msgspec.msgpack.encode(fields)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # a byte msgpack never uses
        b"not msgpack at all",
        b"\x93\x01",  # an array of 3 that ends after one element
        msgspec.msgpack.encode({"kind": 1}),
        msgspec.msgpack.encode("PlaceOrder"),
        msgspec.msgpack.encode([]),
        msgspec.msgpack.encode([99, "gw1", 7, 42, "BTCUSDT"]),  # unknown tag
        msgspec.msgpack.encode([101, 1, 2, 3]),  # an event's tag is not a command
        msgspec.msgpack.encode(["PlaceOrder", "gw1", 7]),  # tag by name
        msgspec.msgpack.encode(PLACE_FIELDS[:5]),  # too short
        msgspec.msgpack.encode([4, "gw", 1, 7]),  # CancelAll without its symbol
        with_field(2, "seven"),  # req: str for int
        with_field(3, 4.0),  # account: float for int
        with_field(3, True),  # account: bool for int
        with_field(4, 5),  # symbol: int for str
        with_field(5, 3),  # side: not a Side
        with_field(6, 0),  # type: not an OrderType
        with_field(7, 4),  # tif: not a TimeInForce
        with_field(8, None),  # price: nil
        with_field(10, ["a"]),  # client_oid: array for str
    ],
)
def test_decode_command_when_bytes_are_not_a_command_raises_malformed_message(data: bytes) -> None:
    with pytest.raises(MalformedMessage, match="bad command"):
        decode_command(data)


EVENT_FIELDS: list[object] = [107, 7, 14, 5, "ETHUSDT", 3, 1, 101, 0]


@pytest.mark.parametrize(
    ("decode", "data", "what"),
    [
        (decode_events, b"\xc1", "bad event batch"),
        (decode_events, msgspec.msgpack.encode(EVENT_FIELDS), "bad event batch"),  # an event, not a batch
        (decode_events, msgspec.msgpack.encode([EVENT_FIELDS[:5]]), "bad event batch"),  # too short
        (decode_events, msgspec.msgpack.encode([[108, *EVENT_FIELDS[1:]]]), "bad event batch"),  # unknown tag
        (decode_events, msgspec.msgpack.encode([[1, "gw", 1, 7, "BTCUSDT", 1, 1, 1, 1, 1, ""]]), "bad event batch"),
        (decode_events, msgspec.msgpack.encode([[107, 7, 14, 5, "ETHUSDT", 3, 3, 101, 0]]), "bad event batch"),
        (decode_batch, b"junk", "bad journal batch"),
        (decode_batch, msgspec.msgpack.encode([1, [10], [[4, "gw", 1, 7]]]), "bad journal batch"),  # bad command
        (decode_batch, msgspec.msgpack.encode([1, 10, []]), "bad journal batch"),  # stamps not an array
        (decode_batch, msgspec.msgpack.encode([1, [10]]), "bad journal batch"),  # too short
        (decode_ack, msgspec.msgpack.encode([7, 6, 0]), "bad ack"),  # not an AckStatus
        (decode_ack, msgspec.msgpack.encode([7, 1]), "bad ack"),
        (decode_ack, b"\xff\xff", "bad ack"),
        (decode_heartbeat, msgspec.msgpack.encode([1]), "bad heartbeat"),
        (decode_heartbeat, msgspec.msgpack.encode(["1", 2]), "bad heartbeat"),
    ],
)
def test_decoder_when_bytes_are_malformed_raises_malformed_message(
    decode: Callable[[bytes], object], data: bytes, what: str
) -> None:
    with pytest.raises(MalformedMessage, match=what):
        decode(data)
