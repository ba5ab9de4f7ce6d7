"""The front door's nginx configuration, rendered from the settings (docs/operations.md, "Front door").

Routes, on one port:

- the market-data REST endpoints (depth, trades, aggTrades, klines, tickers, avgPrice) and the market streams
  (``/ws``, ``/ws/<anything>``, ``/stream``) to the feed processes;
- a user data stream by listenKey (``/ws/<60 characters>``), the WebSocket API (``/ws-api/v3``) and everything else
  (the trading REST API, the UI, the OpenAPI document) to the gateway processes;
- ``/ui-config.json`` answered here: market data is on this same origin.

A client's connections go to the same feed (``ip_hash`` over the same feed order in both feed pools), so a depth
snapshot and the diff stream it is joined to come from one process.
"""

from __future__ import annotations

import os
from pathlib import Path

from wire.config import Settings
from wire.errors import ConfigError

MARKET_PATHS = r"depth|trades|historicalTrades|aggTrades|klines|uiKlines|avgPrice|ticker(/24hr|/price|/bookTicker)?"
LISTEN_KEY = r"[A-Za-z0-9_-]{60}"  # gateways/http/listenkey.py


def _servers(text: str, what: str) -> list[str]:
    servers = [s.strip() for s in text.split(",") if s.strip()]
    if not servers:
        raise ConfigError(f"the front door needs at least one {what}")
    return servers


def render(settings: Settings, state: Path) -> str:
    gateways = _servers(settings.frontdoor_gateways, "gateway (MERCURY_FRONTDOOR_GATEWAYS)")
    feeds = [pair.split("/") for pair in _servers(settings.frontdoor_feeds, "feed (MERCURY_FRONTDOOR_FEEDS)")]
    if any(len(pair) != 2 for pair in feeds):
        raise ConfigError("MERCURY_FRONTDOOR_FEEDS lists host:rest_port/ws_port pairs, comma separated")
    rest = "".join(f"        server {f[0]};\n" for f in feeds)
    ws_port = {f[0]: f[0].rsplit(":", 1)[0] + ":" + f[1] for f in feeds}
    streams = "".join(f"        server {ws_port[f[0]]};\n" for f in feeds)
    gw = "".join(f"        server {g};\n" for g in gateways)
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root nginx would hand its workers to nobody
    # the client's address for the per-IP limits behind (each process trusts it from MERCURY_TRUSTED_PROXIES); set,
    # not appended: this door is the edge, and an address a client wrote in itself is never passed on
    forwarded = "proxy_set_header X-Forwarded-For $remote_addr;"
    upgrade = (
        "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
        f"proxy_set_header Connection $connection_upgrade; {forwarded} proxy_read_timeout 1h; proxy_send_timeout 1h;"
    )
    keepalive = f'proxy_http_version 1.1; proxy_set_header Connection ""; {forwarded}'
    # the UI's Ops page and model panel: Prometheus (which serves under /prometheus/ itself) and the inference
    # service (mounted at its root, so the prefix is stripped), both on this machine
    ui_extra = '"prometheus":"http://$http_host/prometheus","research":"http://$http_host/research"'
    return f"""{user}worker_processes 1;
pid {state}/nginx.pid;
error_log {state}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {state}/tmp/body;
    proxy_temp_path {state}/tmp/proxy;
    fastcgi_temp_path {state}/tmp/fastcgi;
    uwsgi_temp_path {state}/tmp/uwsgi;
    scgi_temp_path {state}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream gateways {{
{gw}        keepalive 64;
    }}
    upstream feeds_rest {{
        ip_hash;
{rest}        keepalive 64;
    }}
    upstream feeds_ws {{
        ip_hash;
{streams}    }}
    server {{
        listen {settings.frontdoor_host}:{settings.frontdoor_port};
        location ~ ^/api/v3/({MARKET_PATHS})$ {{ proxy_pass http://feeds_rest; {keepalive} }}
        location ~ "^/ws/{LISTEN_KEY}$" {{ proxy_pass http://gateways; {upgrade} }}
        location /ws-api/ {{ proxy_pass http://gateways; {upgrade} }}
        location /ws {{ proxy_pass http://feeds_ws; {upgrade} }}
        location /stream {{ proxy_pass http://feeds_ws; {upgrade} }}
        location /prometheus/ {{ proxy_pass http://127.0.0.1:{settings.prometheus_port}; {keepalive} }}
        location /research/ {{ proxy_pass http://127.0.0.1:{settings.research_port}/; {keepalive} }}
        location = /ui-config.json {{
            default_type application/json;
            return 200 '{{"marketRest":"http://$http_host","marketWs":"ws://$http_host",{ui_extra}}}';
        }}
        location / {{ proxy_pass http://gateways; {keepalive} }}
    }}
}}
"""
