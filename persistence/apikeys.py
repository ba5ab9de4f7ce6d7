"""API keys in PostgreSQL (table ``api_keys``, migration 0001): what the gateways authenticate requests with.

Two kinds, as Binance offers:

- **HMAC**: the venue makes a 64-character key id and a 64-character secret. The secret is shown once, when the
  key is created, and stored only encrypted: AES-256-GCM (``cryptography``) with a key-encryption key from the
  environment (``MERCURY_KEY_ENCRYPTION_KEY``, 32 bytes in base64; never in the database, never logged), a
  random 96-bit nonce per secret, and the key id as associated data, so a ciphertext moved to another row does
  not decrypt. The gateways decrypt it to check signatures.
- **Ed25519**: the client keeps its private key and registers the public key, stored as it is (raw 32 bytes).

Keys are revoked, never deleted. ``python -m persistence.apikeys`` is the operator's command:

    python -m persistence.apikeys create 7 --label bot-1     # prints the key id and, once, the secret
    python -m persistence.apikeys add-ed25519 7 key.pem       # registers a public key (PEM or raw 32 bytes)
    python -m persistence.apikeys list 7                      # ids, kinds, labels, dates; never a secret
    python -m persistence.apikeys revoke <key id>
    python -m persistence.apikeys new-encryption-key          # prints a fresh MERCURY_KEY_ENCRYPTION_KEY

Exit codes: 0 done, 1 refused (unknown key, invalid public key, ...), 2 PostgreSQL unreachable or the
encryption key missing or invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import os
import secrets
import string
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

from persistence.db import connect, run_command
from wire.config import load_settings
from wire.errors import MercuryError

ENV_KEY = "MERCURY_KEY_ENCRYPTION_KEY"
ALPHABET = string.ascii_letters + string.digits
NONCE_BYTES = 12


class ApiKeyRefused(MercuryError):
    """A refused API-key operation (unknown key, invalid public key, undecryptable secret)."""


class EncryptionKeyMissing(MercuryError):
    pass


def _token(n: int = 64) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


class SecretCipher:
    """AES-256-GCM with the key-encryption key; the stored form is nonce + ciphertext (with its tag)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise EncryptionKeyMissing(f"{ENV_KEY} must be 32 bytes (base64), not {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SecretCipher:
        value = (os.environ if environ is None else environ).get(ENV_KEY, "")
        if not value:
            raise EncryptionKeyMissing(
                f"{ENV_KEY} is not set: HMAC secrets are stored encrypted with it"
                " (python -m persistence.apikeys new-encryption-key makes one)"
            )
        try:
            return cls(base64.b64decode(value, validate=True))
        except binascii.Error:
            raise EncryptionKeyMissing(f"{ENV_KEY} is not base64") from None

    def encrypt(self, secret: str, key_id: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), key_id.encode())

    def decrypt(self, blob: bytes, key_id: str) -> str:
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], key_id.encode()).decode()
        except InvalidTag:
            raise ApiKeyRefused(
                f"the secret of key {key_id} does not decrypt: wrong {ENV_KEY}, or the row was altered"
            ) from None


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    account: int
    kind: str  # "HMAC" or "ED25519"
    label: str
    created_at: datetime
    revoked_at: datetime | None
    secret: str | None = None  # HMAC, decrypted (only from lookup)
    public_key: bytes | None = None  # ED25519, raw 32 bytes


async def create_hmac(conn: asyncpg.Connection, cipher: SecretCipher, account: int, label: str = "") -> tuple[str, str]:
    """A new HMAC key for ``account``: returns (key id, secret). The secret is not retrievable through this module
    again except by the gateways' ``lookup``."""
    key_id, secret = _token(), _token()
    await _insert(
        conn,
        "INSERT INTO api_keys (key_id, account, kind, secret_ciphertext, label) VALUES ($1, $2, 'HMAC', $3, $4)",
        key_id,
        account,
        cipher.encrypt(secret, key_id),
        label,
    )
    return key_id, secret


async def _stored(conn: asyncpg.Connection, account: int) -> bool:
    # on a venue's first start the persister may not have made its tables yet: asking a table that does not exist
    # would be an ERROR in PostgreSQL's log (seen), so its existence is asked first
    if await conn.fetchval("SELECT to_regclass('accounts')") is None:
        return False
    return await conn.fetchval("SELECT 1 FROM accounts WHERE account = $1", account) is not None


async def await_account(conn: asyncpg.Connection, account: int, deadline: float, poll: float = 0.2) -> None:
    """Wait until the PostgreSQL persister has stored ``account`` (a key for it would break the foreign key, which
    PostgreSQL logs as an ERROR in the venue's output); ApiKeyRefused past ``deadline`` (time.monotonic)."""
    while not await _stored(conn, account):
        if time.monotonic() > deadline:
            raise ApiKeyRefused(f"account {account} is not stored: has the engine created it?")
        await asyncio.sleep(poll)


async def hmac_once_stored(
    url: str, cipher: SecretCipher, account: int, label: str, deadline: float
) -> tuple[str, str]:
    """A new HMAC key for an account just created through the engine: retried while PostgreSQL is not reachable,
    made once the persister has stored the account; past ``deadline`` the last error is raised."""
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            try:
                await await_account(conn, account, deadline)
                return await create_hmac(conn, cipher, account, label)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


async def _insert(conn: asyncpg.Connection, query: str, key_id: str, account: int, *rest: object) -> None:
    try:
        await conn.execute(query, key_id, account, *rest)
    except asyncpg.ForeignKeyViolationError:
        raise ApiKeyRefused(
            f"account {account} does not exist: create it first (python -m client.admin create-account {account}); "
            "the PostgreSQL persister stores it within moments"
        ) from None


def parse_ed25519(data: bytes) -> bytes:
    """The raw 32 bytes of an Ed25519 public key given as PEM or raw; raises ApiKeyRefused otherwise."""
    if len(data) == 32:
        Ed25519PublicKey.from_public_bytes(data)
        return data
    try:
        key = load_pem_public_key(data)
    except ValueError:
        raise ApiKeyRefused(
            "not an Ed25519 public key: expected PEM (-----BEGIN PUBLIC KEY-----) or 32 raw bytes"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise ApiKeyRefused(f"the PEM holds a {type(key).__name__}, not an Ed25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


async def add_ed25519(conn: asyncpg.Connection, account: int, public_key: bytes, label: str = "") -> str:
    raw = parse_ed25519(public_key)
    key_id = _token()
    await _insert(
        conn,
        "INSERT INTO api_keys (key_id, account, kind, public_key, label) VALUES ($1, $2, 'ED25519', $3, $4)",
        key_id,
        account,
        raw,
        label,
    )
    return key_id


def _row_to_key(row: asyncpg.Record, secret: str | None = None) -> ApiKey:
    return ApiKey(
        row["key_id"],
        row["account"],
        row["kind"],
        row["label"],
        row["created_at"],
        row["revoked_at"],
        secret,
        None if row["public_key"] is None else bytes(row["public_key"]),
    )


async def lookup(
    conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy, cipher: SecretCipher, key_id: str
) -> ApiKey | None:
    """The key (secret decrypted) for the gateways; None if there is no such key. Revoked keys are returned with
    ``revoked_at`` set: the caller refuses them (and can say why)."""
    row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key_id)
    if row is None:
        return None
    blob = row["secret_ciphertext"]
    return _row_to_key(row, None if blob is None else cipher.decrypt(bytes(blob), key_id))


async def list_keys(conn: asyncpg.Connection, account: int) -> list[ApiKey]:
    rows = await conn.fetch("SELECT * FROM api_keys WHERE account = $1 ORDER BY created_at, key_id", account)
    return [_row_to_key(r) for r in rows]


async def revoke(conn: asyncpg.Connection, key_id: str) -> None:
    done = await conn.fetchval(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL RETURNING key_id", key_id
    )
    if done is None:
        known = await conn.fetchval("SELECT 1 FROM api_keys WHERE key_id = $1", key_id)
        raise ApiKeyRefused(f"key {key_id} is already revoked" if known else f"no key {key_id}")


# ---- the command ------------------------------------------------------------------------------------------------


async def _command(args: argparse.Namespace, url: str) -> str:
    cipher = SecretCipher.from_env() if args.action == "create" else None
    conn = await connect(url)
    try:
        if args.action == "create":
            assert cipher is not None
            key_id, secret = await create_hmac(conn, cipher, args.account, args.label)
            return f"key id: {key_id}\nsecret: {secret}\n(the secret is shown this once: keep it now)"
        if args.action == "add-ed25519":
            key_id = await add_ed25519(conn, args.account, Path(args.public_key).read_bytes(), args.label)
            return f"key id: {key_id}"
        if args.action == "revoke":
            await revoke(conn, args.key_id)
            return f"key {args.key_id} revoked"
        keys = await list_keys(conn, args.account)
        lines = [
            f"{k.key_id} {k.kind} {k.label or '-'} created {k.created_at:%Y-%m-%d %H:%M:%S}"
            + (f" revoked {k.revoked_at:%Y-%m-%d %H:%M:%S}" if k.revoked_at else "")
            for k in keys
        ]
        return "\n".join(lines) if lines else f"account {args.account} has no keys"
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m persistence.apikeys", description="Create and revoke API keys.")
    parser.add_argument("--url", help="PostgreSQL URL (default: MERCURY_POSTGRES_URL)")
    sub = parser.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="a new HMAC key: prints its id and, once, its secret")
    create.add_argument("account", type=int)
    create.add_argument("--label", default="")
    ed = sub.add_parser("add-ed25519", help="register an Ed25519 public key (a PEM file or 32 raw bytes)")
    ed.add_argument("account", type=int)
    ed.add_argument("public_key", help="path of the public key file")
    ed.add_argument("--label", default="")
    sub.add_parser("list", help="an account's keys (never a secret)").add_argument("account", type=int)
    sub.add_parser("revoke", help="revoke a key").add_argument("key_id")
    sub.add_parser("new-encryption-key", help=f"print a fresh random {ENV_KEY}")
    args = parser.parse_args(argv)
    if args.action == "new-encryption-key":
        print(base64.b64encode(secrets.token_bytes(32)).decode())
        return 0
    work = _command(args, args.url or load_settings().postgres_url)
    return run_command(work, refused=(ApiKeyRefused, OSError), unavailable=(EncryptionKeyMissing,))


if __name__ == "__main__":
    sys.exit(main())
