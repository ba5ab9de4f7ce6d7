"""The msgpack codec (msgspec): one encoder and one typed decoder per message family.

Frames on the wire:

- command (gateway -> sequencer): one ``Command`` (see wire.commands)
- ack (sequencer -> gateway): ``Ack``
- journal batch (sequencer -> Redis journal and -> engine): ``JournalBatch``; the journal entry's id is
  ``<first_in_seq>-0`` and command ``i`` of the batch has ``in_seq = first_in_seq + i`` and stamp ``stamps[i]``
- event batch (engine -> Redis events stream and -> ZMQ PUB): a msgpack array of ``Event``; the stream entry's
  id is ``<first out_seq>-0``
- heartbeat (engine -> ZMQ PUB topic ``h``): ``Heartbeat``

Decoding validates types as it goes (msgspec), so a frame of garbage or of wrong field types raises
``MalformedMessage`` and never reaches the matching code.
"""

from __future__ import annotations

import msgspec

from wire.commands import Command
from wire.enums import AckStatus
from wire.errors import MalformedMessage
from wire.events import Event


class JournalBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    first_in_seq: int
    stamps: list[int]
    cmds: list[Command]


class RawJournalBatch(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The sequencer's view of a batch: commands kept as the bytes the gateway sent (validated, not re-encoded).
    Encodes to exactly the same bytes as the equivalent JournalBatch."""

    first_in_seq: int
    stamps: list[int]
    cmds: list[msgspec.Raw]


class Ack(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The sequencer's answer to one command: ``in_seq`` is 0 unless status is JOURNALED or DUPLICATE."""

    req: int
    status: AckStatus
    in_seq: int
    detail: str = ""


class Heartbeat(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """The engine's progress: every event up to ``out_seq`` caused by commands up to ``in_seq`` is published."""

    in_seq: int
    out_seq: int


_encoder = msgspec.msgpack.Encoder()
encode = _encoder.encode

_command_decoder: msgspec.msgpack.Decoder[Command] = msgspec.msgpack.Decoder(Command)
_batch_decoder = msgspec.msgpack.Decoder(JournalBatch)
_events_decoder = msgspec.msgpack.Decoder(list[Event])
_ack_decoder = msgspec.msgpack.Decoder(Ack)
_heartbeat_decoder = msgspec.msgpack.Decoder(Heartbeat)


def decode_command(data: bytes) -> Command:
    try:
        return _command_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"bad command: {exc}") from None


def decode_batch(data: bytes) -> JournalBatch:
    try:
        return _batch_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"bad journal batch: {exc}") from None


def decode_events(data: bytes) -> list[Event]:
    try:
        return _events_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"bad event batch: {exc}") from None


def decode_ack(data: bytes) -> Ack:
    try:
        return _ack_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"bad ack: {exc}") from None


def decode_heartbeat(data: bytes) -> Heartbeat:
    try:
        return _heartbeat_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise MalformedMessage(f"bad heartbeat: {exc}") from None
