"""What every gateway process does first: logging, settings, the key-encryption key, the venue, metrics."""

from __future__ import annotations

import logging
import sys

from prometheus_client import start_http_server

from persistence.apikeys import EncryptionKeyMissing, SecretCipher
from wire.config import Settings, load_settings
from wire.venue import DEFAULT_VENUE, Venue, load_venue


def start_gateway() -> tuple[Settings, Venue, SecretCipher] | None:
    """The process's settings, venue and secret cipher; None (after saying why) when the key is missing."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = load_settings()
    try:
        cipher = SecretCipher.from_env()
    except EncryptionKeyMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    if settings.metrics_port:
        start_http_server(settings.metrics_port)
    return settings, venue, cipher
