"""How long a bot holds back after the venue says no: REST's Retry-After or the WebSocket API's data.retryAfter
(measured from the serverTime beside it, plus a margin), held on the account (-1015) or on the whole process (-1003,
-1008)."""

from __future__ import annotations

import pytest

from sim.orders import Outcome
from sim.rest import Gate, backoff
from sim.wsapi import RETRY_MARGIN, retry_wait


def test_the_websocket_apis_retry_after_is_an_instant_measured_from_the_server_time() -> None:
    error = {"code": -1003, "msg": "...", "data": {"serverTime": 1_000_000, "retryAfter": 1_120_000}}
    assert retry_wait(error) == pytest.approx(120 + RETRY_MARGIN)
    assert retry_wait({"code": -1003, "msg": "...", "data": {"serverTime": 5, "retryAfter": 4}}) == RETRY_MARGIN
    assert retry_wait({"code": -2010, "msg": "..."}) is None  # not a limit's refusal
    assert retry_wait({"code": -1003, "data": {"retryAfter": "soon"}}) is None


HELD = [(-1015, True, False), (-1003, False, True), (-1008, False, True), (-2010, False, False)]


@pytest.mark.parametrize(("code", "own_held", "shared_held"), HELD)
def test_an_order_limit_holds_the_account_and_a_weight_limit_or_ban_everything(
    code: int, own_held: bool, shared_held: bool
) -> None:
    own, shared = Gate(), Gate()
    backoff(Outcome(ok=False, code=code, retry_after=30.0), own, shared)
    assert (own.until > 0, shared.until > 0) == (own_held, shared_held)
