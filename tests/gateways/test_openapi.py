"""The OpenAPI document: it describes every HTTP route the gateway has, and schemathesis, generating requests from
it (valid and not), finds no 500 and no response that breaks the document."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.routing import Route

from gateways.http.app import create_app
from persistence.apikeys import SecretCipher
from tests.gateways.conftest import Exchange, running_exchange
from tests.gateways.test_rest import send
from tests.harness import PostgresServer
from wire.config import Settings
from wire.venue import DEFAULT_VENUE, load_venue


def test_the_document_describes_exactly_the_gateways_http_routes(exchange: Exchange) -> None:
    with urllib.request.urlopen(exchange.url + "/openapi.json", timeout=5) as response:
        spec = json.loads(response.read())
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    app = create_app(Settings(), load_venue(DEFAULT_VENUE), SecretCipher(b"k" * 32))
    routed = {
        (route.path, method)
        for route in app.app.routes
        if isinstance(route, Route) and route.path.startswith(("/api/", "/sapi/"))  # not the document, nor the UI
        for method in set(route.methods or ()) - {"HEAD"}
    }
    assert documented == routed
    signed = spec["paths"]["/api/v3/order"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert {"timestamp", "signature"} <= set(signed["schema"]["required"])


@pytest.fixture(scope="module")
def unlimited(tmp_path_factory: pytest.TempPathFactory, postgres_server: PostgresServer) -> Iterator[Exchange]:
    """An exchange whose gateway does not rate-limit this test's thousands of requests."""
    limits = {"MERCURY_WEIGHT_PER_MINUTE": "100000000", "MERCURY_ORDERS_PER_10S": "100000000"}
    with running_exchange(tmp_path_factory.mktemp("fuzz"), postgres_server, gateway_env=limits) as ex:
        yield ex


@pytest.mark.timeout(600)
def test_no_request_the_document_allows_gets_a_500_or_an_undocumented_answer(unlimited: Exchange) -> None:
    """schemathesis (its CLI: its pytest plugin does not load under this pytest) generates requests from the
    document, valid and not, for every operation. It cannot sign, so signed operations come with a real API key
    and a made-up signature: they exercise parsing and the refusals up to the signature check."""
    key, _ = unlimited.keys[1]
    done = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", unlimited.url + "/openapi.json", "-H", f"X-MBX-APIKEY: {key}",
         "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance",
         "--max-examples", "25", "--generation-deterministic", "--request-timeout", "10"],
        capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    summary = done.stdout[-4000:]
    assert "20 selected / 20 total" in done.stdout and "Rate limited" not in done.stdout, summary
    fuzzed = re.search(r"Fuzzing.*?(\d+) passed", done.stdout, re.S)
    assert fuzzed is not None and int(fuzzed.group(1)) == 20, summary  # every operation fuzzed, none failed


def _signed_request(exchange: Exchange, case: Any) -> tuple[int, Any]:
    """The generated case's parameters, signed as a client signs them (the fuzzer itself cannot)."""
    key, secret = exchange.keys[1]
    given = case.query if case.method.upper() in ("GET", "DELETE") else case.body
    given = given if isinstance(given, dict) else {}
    params = {k: v for k, v in given.items() if k not in ("signature", "timestamp", "recvWindow")}
    payload = urlencode({"timestamp": time.time_ns() // 1_000_000, **params})
    payload += "&signature=" + hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    if case.method.upper() in ("GET", "DELETE"):
        return send(exchange, case.method.upper(), case.path, query=payload, key=key)
    return send(exchange, case.method.upper(), case.path, body=payload, key=key)


@pytest.mark.timeout(600)
def test_signed_requests_with_generated_parameters_never_get_a_500(unlimited: Exchange) -> None:
    """Every signed operation with parameters the document allows (and some it does not), validly signed: the
    gateway answers each with a 2xx or a Binance error, never a 500, and the ledger of what it did stays sane."""
    schema = schemathesis.openapi.from_url(unlimited.url + "/openapi.json")
    seen: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an invalid operation raises: the test fails, rightly
        if "security" not in operation.definition.raw:
            continue

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                  derandomize=True)  # fmt: skip
        def fuzz(case: Any) -> None:
            status, body = _signed_request(unlimited, case)
            assert status < 500, (case.method, case.path, case.query, case.body, body)
            if status >= 400:
                assert isinstance(body["code"], int) and isinstance(body["msg"], str), body
            seen.setdefault(f"{case.method} {case.path}", set()).add(status)

        fuzz()
    assert len(seen) == 17, seen  # every signed operation was exercised
    assert any(200 in statuses for statuses in seen.values()), seen  # and some generated requests went through
