"""The gateway's OpenAPI 3.0 document, served at /openapi.json (a Mercury addition; Binance publishes none), built
from the same endpoint table the routes come from (gateways.http.app.ENDPOINTS), so the two cannot drift apart:
tests/gateways/test_openapi.py checks the document against the routes and runs schemathesis against it.
"""

from __future__ import annotations

from typing import Any

from gateways.binance.limits import Weight
from wire.enums import SelfTradeMode

Schema = dict[str, Any]

DECIMAL: Schema = {"type": "string", "pattern": r"^[0-9]{1,20}(\.[0-9]{1,20})?$"}
INT: Schema = {"type": "integer", "format": "int64"}
SYMBOL: Schema = {"type": "string", "example": "BTCUSDT"}
CLIENT_ID: Schema = {"type": "string", "pattern": r"^[.A-Z:/a-z0-9_-]{1,36}$"}

# operation -> [(name, schema, required)]
PARAMS: dict[str, list[tuple[str, Schema, bool]]] = {
    "exchange_info": [("symbol", SYMBOL, False), ("symbols", {"type": "string", "example": '["BTCUSDT"]'}, False)],
    "new_order": [
        ("symbol", SYMBOL, True),
        ("side", {"type": "string", "enum": ["BUY", "SELL"]}, True),
        ("type", {"type": "string", "enum": ["LIMIT", "MARKET", "LIMIT_MAKER"]}, True),
        ("timeInForce", {"type": "string", "enum": ["GTC", "IOC", "FOK"]}, False),
        ("quantity", DECIMAL, False),
        ("quoteOrderQty", DECIMAL, False),
        ("price", DECIMAL, False),
        ("newClientOrderId", CLIENT_ID, False),
        ("selfTradePreventionMode", {"type": "string", "enum": [m.name for m in SelfTradeMode]}, False),
        ("newOrderRespType", {"type": "string", "enum": ["ACK", "RESULT", "FULL"]}, False),
    ],
    "cancel_order": [
        ("symbol", SYMBOL, True),
        ("orderId", INT, False),
        ("origClientOrderId", CLIENT_ID, False),
        ("newClientOrderId", CLIENT_ID, False),
    ],
    "query_order": [("symbol", SYMBOL, True), ("orderId", INT, False), ("origClientOrderId", CLIENT_ID, False)],
    "open_orders": [("symbol", SYMBOL, False)],
    "account": [("omitZeroBalances", {"type": "string", "enum": ["true", "false"]}, False)],
    "commission": [("symbol", SYMBOL, True)],
    "trade_fee": [("symbol", SYMBOL, False)],
    "cancel_all": [("symbol", SYMBOL, True)],
    "all_orders": [
        ("symbol", SYMBOL, True),
        ("orderId", INT, False),
        ("startTime", INT, False),
        ("endTime", INT, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
    ],
    "my_trades": [
        ("symbol", SYMBOL, True),
        ("orderId", INT, False),
        ("fromId", INT, False),
        ("startTime", INT, False),
        ("endTime", INT, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
    ],
    "my_prevented_matches": [  # preventedMatchId, or orderId with fromPreventedMatchId and limit (else -1128)
        ("symbol", SYMBOL, True),
        ("preventedMatchId", INT, False),
        ("orderId", INT, False),
        ("fromPreventedMatchId", INT, False),
        ("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, False),
    ],
}
PARAMS["test_order"] = PARAMS["new_order"]
PARAMS["user_stream_keep_alive"] = PARAMS["user_stream_close"] = [("listenKey", {"type": "string"}, True)]
KEY_ONLY = frozenset({"user_stream_create", "user_stream_keep_alive", "user_stream_close"})  # API key, no signature
PARAMS["cancel_replace"] = [
    *PARAMS["new_order"],
    ("cancelReplaceMode", {"type": "string", "enum": ["STOP_ON_FAILURE", "ALLOW_FAILURE"]}, True),
    ("cancelOrderId", INT, False),
    ("cancelOrigClientOrderId", CLIENT_ID, False),
]

SIGNED_PARAMS: list[tuple[str, Schema, bool]] = [
    ("timestamp", INT, True),
    ("recvWindow", {"type": "integer", "minimum": 1, "maximum": 60000}, False),
    ("signature", {"type": "string"}, True),
]

ERROR: Schema = {
    "type": "object",
    "required": ["code", "msg"],
    "properties": {"code": {"type": "integer"}, "msg": {"type": "string"}, "data": {"type": "object"}},
}

RESULTS: dict[str, Schema] = {
    "ping": {"type": "object", "maxProperties": 0},
    "time": {"type": "object", "required": ["serverTime"], "properties": {"serverTime": INT}},
    "open_orders": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
    "all_orders": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
    "cancel_all": {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
    "query_order": {"$ref": "#/components/schemas/Order"},
    "my_trades": {"type": "array", "items": {"type": "object", "required": ["id", "orderId", "price", "qty"]}},
    "commission": {"type": "object", "required": ["symbol", "standardCommission", "taxCommission", "discount"]},
    "order_rate_limits": {
        "type": "array",
        "items": {"type": "object", "required": ["rateLimitType", "limit", "count"]},
    },
    "exchange_info": {
        "type": "object",
        "required": ["symbols", "rateLimits"],
        "properties": {"symbols": {"type": "array"}, "rateLimits": {"type": "array"}},
    },
    "trade_fee": {
        "type": "array",
        "items": {"type": "object", "required": ["symbol", "makerCommission", "takerCommission"]},
    },
}
ORDER: Schema = {
    "type": "object",
    "required": ["symbol", "orderId", "clientOrderId", "price", "origQty", "executedQty", "status", "type", "side"],
    "properties": {
        "symbol": {"type": "string"},
        "orderId": INT,
        "clientOrderId": {"type": "string"},
        "price": {"type": "string"},
        "origQty": {"type": "string"},
        "executedQty": {"type": "string"},
        "cummulativeQuoteQty": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"],
        },
        "type": {"type": "string"},
        "side": {"type": "string", "enum": ["BUY", "SELL"]},
    },
}


def document(
    endpoints: tuple[tuple[str, str, str, Weight], ...], public: frozenset[str], symbols: list[str]
) -> dict[str, Any]:
    """The document; ``symbols`` are the venue's (Binance's own spec cannot list them, Mercury's can, so that
    generated requests reach past the symbol check)."""
    symbol: Schema = {"type": "string", "enum": symbols}
    paths: dict[str, dict[str, Any]] = {}
    for path, method, name, weight in endpoints:
        signed = name not in public and name not in KEY_ONLY
        params = [(n, symbol if schema is SYMBOL else schema, required)
                  for n, schema, required in PARAMS.get(name, []) + (SIGNED_PARAMS if signed else [])]  # fmt: skip
        operation: dict[str, Any] = {
            "operationId": name,
            "description": f"Request weight {weight if isinstance(weight, int) else weight.describe()}."
            + (" Signed (HMAC-SHA256 or Ed25519, docs/api.md)." if signed else ""),
            "responses": {
                "200": {"description": "done", "content": {"application/json": {"schema": RESULTS.get(name, {})}}},
                "default": {
                    "description": "refused (Binance's error)",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if signed or name in KEY_ONLY:
            operation["security"] = [{"apiKey": []}]
        if method in ("GET", "DELETE"):
            operation["parameters"] = [
                {"name": n, "in": "query", "required": required, "schema": schema} for n, schema, required in params
            ]
        elif params:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {n: schema for n, schema, _ in params},
                            "required": [n for n, _, required in params if required],
                        }
                    }
                },
            }
        paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Mercury HTTP gateway (Binance Spot /api/v3 subset)", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, "Order": ORDER},
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "X-MBX-APIKEY"}},
        },
    }
