"""API keys against a real PostgreSQL: HMAC secrets stored only encrypted and shown once, Ed25519 public keys,
revocation, and what every bad input or missing setting gets (command output and exit codes)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from persistence.apikeys import (
    ENV_KEY,
    ApiKey,
    ApiKeyRefused,
    EncryptionKeyMissing,
    SecretCipher,
    add_ed25519,
    await_account,
    create_hmac,
    hmac_once_stored,
    lookup,
    main,
    revoke,
)
from persistence.migrate import migrate

T = TypeVar("T")
KEK = base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def db(pg_url: str) -> str:
    """A database with the schema and accounts 7 and 8 (as the PostgreSQL persister stores them)."""
    run(pg_url, migrate)
    run(pg_url, lambda c: c.execute("INSERT INTO accounts (account, created_ts, out_seq) VALUES (7, 1, 1), (8, 1, 2)"))
    return pg_url


def run(url: str, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    async def go() -> T:
        conn = await asyncpg.connect(url)
        try:
            return await fn(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_hmac_secret_is_stored_encrypted_and_decrypts_for_the_gateways(db: str) -> None:
    cipher = SecretCipher(b"k" * 32)
    key_id, secret = run(db, lambda c: create_hmac(c, cipher, 7, "bot"))
    assert len(key_id) == 64 and len(secret) == 64 and key_id.isalnum() and secret.isalnum()
    stored = run(db, lambda c: c.fetchval("SELECT secret_ciphertext FROM api_keys WHERE key_id = $1", key_id))
    assert secret.encode() not in bytes(stored)
    key = run(db, lambda c: lookup(c, cipher, key_id))
    assert key is not None and (key.account, key.kind, key.label, key.secret) == (7, "HMAC", "bot", secret)
    assert run(db, lambda c: lookup(c, cipher, "nope")) is None


def test_secret_with_the_wrong_encryption_key_or_moved_to_another_row_does_not_decrypt(db: str) -> None:
    cipher = SecretCipher(b"k" * 32)
    key_id, _ = run(db, lambda c: create_hmac(c, cipher, 7))
    with pytest.raises(ApiKeyRefused, match="does not decrypt"):
        run(db, lambda c: lookup(c, SecretCipher(b"x" * 32), key_id))
    other, _ = run(db, lambda c: create_hmac(c, cipher, 8))
    run(db, lambda c: c.execute(
        "UPDATE api_keys SET secret_ciphertext = (SELECT secret_ciphertext FROM api_keys WHERE key_id = $1)"
        " WHERE key_id = $2", key_id, other))  # fmt: skip
    with pytest.raises(ApiKeyRefused, match="does not decrypt"):
        run(db, lambda c: lookup(c, cipher, other))  # the key id is the associated data


def test_ed25519_public_key_is_stored_raw_from_pem_or_raw_bytes(db: str) -> None:
    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    cipher = SecretCipher(b"k" * 32)
    for given in (pem, raw):

        async def add_then_lookup(c: asyncpg.Connection, g: bytes = given) -> ApiKey | None:
            return await lookup(c, cipher, await add_ed25519(c, 7, g))

        key = run(db, add_then_lookup)
        assert key is not None and (key.kind, key.public_key, key.secret) == ("ED25519", raw, None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a key", "not an Ed25519 public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not an Ed25519 public key"),
    ],
)
def test_invalid_public_key_is_refused_and_nothing_is_stored(db: str, data: bytes, message: str) -> None:
    with pytest.raises(ApiKeyRefused, match=message):
        run(db, lambda c: add_ed25519(c, 7, data))
    assert run(db, lambda c: c.fetchval("SELECT count(*) FROM api_keys")) == 0


def test_revoked_key_stays_with_its_date_and_cannot_be_revoked_twice(db: str) -> None:
    cipher = SecretCipher(b"k" * 32)
    key_id, _ = run(db, lambda c: create_hmac(c, cipher, 7))
    run(db, lambda c: revoke(c, key_id))
    key = run(db, lambda c: lookup(c, cipher, key_id))
    assert key is not None and key.revoked_at is not None
    with pytest.raises(ApiKeyRefused, match="already revoked"):
        run(db, lambda c: revoke(c, key_id))
    with pytest.raises(ApiKeyRefused, match="no key nope"):
        run(db, lambda c: revoke(c, "nope"))


@pytest.mark.parametrize(
    ("environ", "message"),
    [({}, "is not set"), ({ENV_KEY: "***"}, "is not base64"), ({ENV_KEY: base64.b64encode(b"short").decode()}, "32")],
)
def test_encryption_key_missing_or_invalid_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(EncryptionKeyMissing, match=message):
        SecretCipher.from_env(environ)


def test_command_creates_shows_the_secret_once_lists_and_revokes(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_KEY, KEK)
    assert main(["--url", db, "create", "7", "--label", "bot-1"]) == 0
    out = capsys.readouterr().out
    key_id = out.split("key id: ")[1].split()[0]
    secret = out.split("secret: ")[1].split()[0]
    assert "shown this once" in out
    assert main(["--url", db, "list", "7"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "HMAC bot-1" in listed and secret not in listed
    assert main(["--url", db, "revoke", key_id]) == 0
    assert main(["--url", db, "revoke", key_id]) == 1
    assert "already revoked" in capsys.readouterr().err


def test_command_add_ed25519_from_a_pem_file(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    assert main(["--url", db, "add-ed25519", "7", str(path)]) == 0
    assert "key id: " in capsys.readouterr().out
    assert main(["--url", db, "add-ed25519", "7", str(tmp_path / "missing.pem")]) == 1


def test_a_key_for_an_account_that_does_not_exist_is_refused(
    db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV_KEY, KEK)
    assert main(["--url", db, "create", "99"]) == 1
    assert "account 99 does not exist: create it first" in capsys.readouterr().err
    with pytest.raises(ApiKeyRefused, match="account 99 does not exist"):
        raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        run(db, lambda c: add_ed25519(c, 99, raw))
    assert run(db, lambda c: c.fetchval("SELECT count(*) FROM api_keys")) == 0


EARLY_INSERTS = """
CREATE SEQUENCE early_inserts;
CREATE FUNCTION count_early_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- before the foreign key is checked; a sequence is not rolled back with the failing insert
    IF NOT EXISTS (SELECT 1 FROM accounts WHERE account = NEW.account) THEN PERFORM nextval('early_inserts'); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER count_early_insert BEFORE INSERT ON api_keys FOR EACH ROW EXECUTE FUNCTION count_early_insert();
"""


def test_a_key_for_an_account_being_created_waits_for_it_without_a_failed_insert(db: str) -> None:
    """What the start command and the simulator do right after CreateAccount: the persister stores the account a
    moment later. The key waits for it instead of breaking the foreign key (an ERROR line in the venue's output);
    an account that never comes is refused at the deadline."""
    run(db, lambda c: c.execute(EARLY_INSERTS))
    cipher = SecretCipher(b"k" * 32)

    async def create_account(conn: asyncpg.Connection) -> None:
        await conn.execute("INSERT INTO accounts (account, created_ts, out_seq) VALUES (50, 1, 3)")

    key_id = key_made_after(db, cipher, 50, create_account)
    assert run(db, lambda c: c.fetchval("SELECT account FROM api_keys WHERE key_id = $1", key_id)) == 50
    with pytest.raises(ApiKeyRefused, match="account 51 is not stored"):
        asyncio.run(hmac_once_stored(db, cipher, 51, "demo", time.monotonic() + 0.5))
    assert early_inserts(db) == 0
    with pytest.raises(ApiKeyRefused):  # what the counter sees of an insert made too early
        run(db, lambda c: create_hmac(c, cipher, 52))
    assert early_inserts(db) == 1


def test_a_key_asked_before_the_persister_made_its_tables_waits_for_them(pg_url: str) -> None:
    """A venue's first start: the demo account's key is asked while the persister has not migrated the empty
    database yet. It waits (asking for the table first, not a query that fails) and is made once the account is."""
    cipher = SecretCipher(b"k" * 32)
    # no table yet: "not stored" at the deadline, not a failed query (UndefinedTableError, an ERROR in the log)
    with pytest.raises(ApiKeyRefused, match="account 7 is not stored"):
        run(pg_url, lambda c: await_account(c, 7, time.monotonic() + 0.3))

    async def migrate_and_create(conn: asyncpg.Connection) -> None:
        await migrate(conn)
        await conn.execute("INSERT INTO accounts (account, created_ts, out_seq) VALUES (7, 1, 1)")

    key_id = key_made_after(pg_url, cipher, 7, migrate_and_create)
    assert run(pg_url, lambda c: c.fetchval("SELECT account FROM api_keys WHERE key_id = $1", key_id)) == 7


def key_made_after(
    url: str, cipher: SecretCipher, account: int, later: Callable[[asyncpg.Connection], Awaitable[None]]
) -> str:
    """hmac_once_stored for ``account``, still waiting 0.6 s on, then ``later`` (what the persister does): the key
    it then makes."""

    async def go() -> str:
        made = asyncio.create_task(hmac_once_stored(url, cipher, account, "demo", time.monotonic() + 10))
        await asyncio.sleep(0.6)
        assert not made.done()
        conn = await asyncpg.connect(url)
        try:
            await later(conn)
        finally:
            await conn.close()
        return (await made)[0]

    return asyncio.run(go())


def early_inserts(url: str) -> int:
    count = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM early_inserts"
    return int(run(url, lambda c: c.fetchval(count)))


@pytest.mark.parametrize(
    ("argv", "environ", "code", "message"),
    [
        (["create", "7"], {}, 2, f"{ENV_KEY} is not set"),
        (["--url", "postgresql://mercury@127.0.0.1:1/x", "list", "7"], {}, 2, "cannot reach PostgreSQL"),
    ],
)
def test_command_when_it_cannot_work_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str], environ: dict[str, str],
    code: int, message: str,
) -> None:  # fmt: skip
    monkeypatch.delenv(ENV_KEY, raising=False)
    assert main(argv) == code
    assert message in capsys.readouterr().err


def test_new_encryption_key_is_32_random_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-encryption-key"]) == 0
    first = capsys.readouterr().out.strip()
    main(["new-encryption-key"])
    assert len(base64.b64decode(first)) == 32 and first != capsys.readouterr().out.strip()
