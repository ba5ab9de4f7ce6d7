-- 0001: what every persister and the gateways share, before any event table.
-- Applied once, in one transaction, by persistence/migrate.py; never edited after that (a new file changes it).

-- How far each consumer of the engine's events stream has durably applied it: a persister writes its row in the
-- same transaction as the rows an event batch produced, so a crash never loses or doubles a batch. The events
-- stream may be trimmed only below the smallest out_seq of the registered consumers.
CREATE TABLE consumer_offsets (
    consumer   text        PRIMARY KEY,
    out_seq    bigint      NOT NULL CHECK (out_seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events a consumer could not apply, kept with the reason: never silently dropped.
CREATE TABLE quarantine (
    id         bigserial   PRIMARY KEY,
    consumer   text        NOT NULL,
    out_seq    bigint,                -- NULL when the entry could not even be decoded that far
    stream_id  text        NOT NULL,  -- the Redis stream entry id
    payload    bytea       NOT NULL,
    reason     text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantine_consumer ON quarantine (consumer, id);

-- Accounts as the engine created them (AccountCreated), for the gateways' key lookups and history queries.
CREATE TABLE accounts (
    account    bigint      PRIMARY KEY CHECK (account >= 0),
    created_ts bigint      NOT NULL,  -- the sequencer stamp of the CreateAccount, ns since the epoch
    out_seq    bigint      NOT NULL
);

-- API keys. An HMAC secret is stored only encrypted (with a key from the environment, never in the database);
-- an Ed25519 public key is stored as it is. A key is never deleted, only revoked, so that audits can name it.
CREATE TABLE api_keys (
    key_id            text        PRIMARY KEY,
    account           bigint      NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('HMAC', 'ED25519')),
    secret_ciphertext bytea,
    public_key        bytea,
    label             text        NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz,
    CHECK ((kind = 'HMAC') = (secret_ciphertext IS NOT NULL)),
    CHECK ((kind = 'ED25519') = (public_key IS NOT NULL))
);
CREATE INDEX api_keys_account ON api_keys (account);
