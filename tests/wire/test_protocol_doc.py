"""docs/protocol.md lists every field of every message in order, with the right tag: the doc cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec
import pytest

from wire import codec, commands, events
from wire.enums import AckStatus
from wire.reasons import RejectReason

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def _structs() -> list[type[msgspec.Struct]]:
    found: list[type[msgspec.Struct]] = []
    for module in (commands, events):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, msgspec.Struct) and value.__module__ == module.__name__:
                found.append(value)
    return [*found, codec.JournalBatch, codec.Ack, codec.Heartbeat]


def _section(title: str) -> str:
    match = re.search(rf"^### {re.escape(title)}\n(.*?)(?=^#)", DOC, re.S | re.M)
    assert match, f"docs/protocol.md has no section '### {title}'"
    return match.group(1)


@pytest.mark.parametrize("cls", _structs(), ids=lambda c: c.__name__)
def test_protocol_doc_lists_fields_in_order(cls: type[msgspec.Struct]) -> None:
    tag = cls.__struct_config__.tag
    section = _section(f"{cls.__name__} (tag {tag})" if tag is not None else cls.__name__)
    documented = re.findall(r"^\| \d+ \| (\w+) \|", section, re.M)
    assert documented == list(cls.__struct_fields__)


def test_protocol_doc_lists_every_reject_reason_and_ack_status() -> None:
    for reason in RejectReason:
        assert f"| {reason.value} | {reason.name} |" in DOC
    for status in AckStatus:
        assert f"| {status.value} | {status.name} |" in DOC
