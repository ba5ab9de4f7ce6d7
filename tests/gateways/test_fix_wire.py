"""The FIX gateway from raw sockets, for what a good engine never sends: garbled bytes, a wrong BodyLength or
CheckSum, missing required tags, unknown or unsupported MsgTypes, wrong CompIDs, a sequence gap; and a fuzz test
throwing random and mutated messages at it. Each gets what the FIX specification says, and the gateway lives on."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateways.conftest import Exchange
from tests.gateways.fix_support import Raw, fix_gateway, frame, header
from tests.harness import Service

ORDER = [(11, "raw-1"), (55, "BTCUSDT"), (54, "1"), (38, "0.01"), (40, "2"), (44, "100.00"), (59, "1"),
         (60, "20260101-00:00:00.000")]  # fmt: skip
ANSWERS = frozenset({"0", "1", "2", "3", "4", "5", "8", "9", "j", "r", "A"})


@pytest.fixture(scope="module")
def fix_port(exchange: Exchange, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, int]]:
    service, port = fix_gateway(exchange, tmp_path_factory.mktemp("fix-wire"))
    service.start()
    yield service, port
    service.stop()


@pytest.fixture
def session(exchange: Exchange, fix_port: tuple[Service, int]) -> Iterator[Raw]:
    """A raw connection logged on as BOT3 with fresh sequence numbers (ResetSeqNumFlag)."""
    key, secret = exchange.keys[3]
    raw = Raw(fix_port[1])
    logon = raw.logon(key, secret)
    assert logon is not None and logon[35] == "A", logon
    yield raw
    raw.close()


def still_answers(raw: Raw, seq: int) -> bool:
    """The session is up: a TestRequest gets its Heartbeat."""
    raw.send(frame([*header("1", seq), (112, f"probe-{seq}")]))
    heartbeat = raw.read_type("0")
    return heartbeat is not None and heartbeat.get(112) == f"probe-{seq}"


def test_a_message_with_a_wrong_checksum_or_body_length_is_ignored_and_the_session_goes_on(session: Raw) -> None:
    session.send(frame([*header("D", 2), *ORDER], checksum=7))
    session.send(frame([*header("D", 2), *ORDER], body_length=3))
    session.send(b"\x00\xff garbage that is not FIX at all \x01\x01")
    assert still_answers(session, 2)


def test_a_missing_required_tag_gets_a_session_reject_naming_it(session: Raw) -> None:
    session.send(frame([*header("D", 2), *[(t, v) for t, v in ORDER if t != 54]]))
    reject = session.read_type("3")
    assert reject is not None and (reject[373], reject[371], reject[45]) == ("1", "54", "2"), reject
    assert still_answers(session, 3)


def test_an_unknown_msgtype_gets_a_session_reject_and_an_unsupported_one_a_business_reject(session: Raw) -> None:
    session.send(frame([*header("ZZ", 2)]))
    reject = session.read_type("3")
    assert reject is not None and reject[373] == "11", reject  # Invalid MsgType
    session.send(frame([*header("R", 3), (131, "q-1"), (146, "1"), (55, "BTCUSDT")]))  # QuoteRequest
    business = session.read_type("j")
    assert business is not None and (business[380], business[372]) == ("3", "R"), business
    assert still_answers(session, 4)


def test_wrong_comp_ids_end_the_connection(exchange: Exchange, fix_port: tuple[Service, int]) -> None:
    key, secret = exchange.keys[3]
    stranger = Raw(fix_port[1])
    stranger.send(frame([*header("A", 1, sender="NOBODY"), (98, "0"), (108, "30"), (141, "Y"), (553, key),
                         (554, secret)]))  # fmt: skip
    assert stranger.closed(), "a session nobody configured gets no logon"
    stranger.close()
    wrong_target = Raw(fix_port[1])
    wrong_target.send(frame([*header("A", 1, target="ELSEWHERE"), (98, "0"), (108, "30"), (141, "Y"), (553, key),
                             (554, secret)]))  # fmt: skip
    assert wrong_target.closed()
    wrong_target.close()


def test_a_comp_id_that_changes_mid_session_is_rejected_and_logged_out(session: Raw) -> None:
    session.send(frame([*header("1", 2, sender="BOT1"), (112, "x")]))
    answers = [session.read(3), session.read(3)]
    kinds = {a[35] for a in answers if a}
    assert "5" in kinds or session.closed(), answers  # CompID problem: Reject and Logout, then the end


def test_a_sequence_gap_gets_a_resend_request_and_the_session_goes_on(session: Raw) -> None:
    session.send(frame([*header("1", 5), (112, "ahead")]))  # 2, 3 and 4 never sent
    resend = session.read_type("2")
    assert resend is not None and resend[7] == "2", resend  # BeginSeqNo: the first one missing
    session.send(frame([*header("4", 2), (43, "Y"), (122, resend[52]), (123, "Y"), (36, "6")]))  # gap fill to 6
    assert still_answers(session, 6)


def test_a_signed_logon_is_accepted_and_a_bad_signature_is_logged_out(
    exchange: Exchange, fix_port: tuple[Service, int]
) -> None:
    key, secret = exchange.keys[3]

    def good(payload: bytes) -> str:
        return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()

    def bad(payload: bytes) -> str:
        return "0" * 64

    for signature_of, accepted in ((good, True), (bad, False)):
        raw = Raw(fix_port[1])
        fields = [*header("A", 1), (98, "0"), (108, "30"), (141, "Y"), (553, key)]
        values = dict(fields)
        payload = "\x01".join(["A", values[49], values[56], values[34], values[52]]).encode()
        signature = signature_of(payload)
        raw.send(frame([*fields, (95, str(len(signature))), (96, signature)]))
        answer = raw.read(5)
        raw.close()
        assert answer is not None
        if accepted:
            assert answer[35] == "A", answer
        else:
            assert answer[35] == "5" and "bad signature" in answer[58], answer


def test_the_gateway_process_survived_everything(fix_port: tuple[Service, int]) -> None:
    assert fix_port[0].alive()


# fuzzing ----------------------------------------------------------------------------------------------------------

valid = [*header("D", 2), *ORDER]
mutations = st.one_of(
    st.binary(min_size=1, max_size=300).map(lambda b: ("bytes", b)),
    st.tuples(st.integers(0, len(valid) - 1), st.text(max_size=20)).map(lambda m: ("value", m)),
    st.integers(0, len(valid) - 1).map(lambda i: ("drop", i)),
    st.tuples(st.integers(1, 2000), st.text(max_size=12)).map(lambda m: ("add", m)),
    st.tuples(st.integers(0, 500), st.integers(0, 255)).map(lambda m: ("flip", m)),
)


def mutated(kind: str, arg: Any) -> bytes:
    if kind == "bytes":
        return bytes(arg)
    fields = list(valid)
    if kind == "value":
        i, text = arg
        fields[i] = (fields[i][0], text.replace("\x01", ""))
    elif kind == "drop":
        del fields[arg]
    elif kind == "add":
        tag, text = arg
        fields.append((tag, text.replace("\x01", "") or "x"))
    data = bytearray(frame(fields))
    if kind == "flip":
        at, value = arg
        data[at % len(data)] = value
    return bytes(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations)
def test_random_and_mutated_messages_never_break_the_gateway(exchange: Exchange, fix_port: tuple[Service, int],
                                                            mutation: tuple[str, Any]) -> None:  # fmt: skip
    key, secret = exchange.keys[3]
    raw = Raw(fix_port[1])
    try:
        assert raw.logon(key, secret) is not None
        raw.send(mutated(*mutation))
        while (answer := raw.read(0.3)) is not None:  # whatever comes back is a FIX message of a kind FIX allows
            assert answer.get(35) in ANSWERS, answer
            assert answer.get(8) == "FIX.4.4" and 10 in answer, answer
    finally:
        raw.close()
    assert fix_port[0].alive(), "the gateway crashed"
    again = Raw(fix_port[1])  # and it still logs a session on
    try:
        assert again.logon(key, secret) is not None
    finally:
        again.close()
