"""The OpenAPI document: it describes every HTTP route the gateway has, and schemathesis, generating requests from
it (valid and not), finds no 500 and no response that breaks the document."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from starlette.routing import Route

from gateways.http.app import create_app
from persistence.apikeys import SecretCipher
from tests.gateways.conftest import Exchange, running_exchange
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
        for route in app.routes
        if isinstance(route, Route) and route.path != "/openapi.json"
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
    assert "16 selected / 16 total" in done.stdout and "Rate limited" not in done.stdout, summary
    fuzzed = re.search(r"Fuzzing.*?(\d+) passed", done.stdout, re.S)
    assert fuzzed is not None and int(fuzzed.group(1)) == 16, summary  # every operation fuzzed, none failed
