-- 0002: the PostgreSQL persister's read model of the engine's events (persistence/postgres.py).
-- Prices are in ticks, quantities in lots, money in integer asset units (wire.venue), times in ns since the epoch
-- (the sequencer's stamp of the command that caused the change). Every row names the out_seq it came from.

-- A consumer resumes after the last stream entry it applied (every entry is applied whole, in one transaction),
-- which also passes entries that held no event it could decode.
ALTER TABLE consumer_offsets ADD COLUMN stream_id text NOT NULL DEFAULT '0-0';

-- A quarantined entry is stored once per consumer even when a restarted consumer meets it again.
CREATE UNIQUE INDEX quarantine_entry ON quarantine (consumer, stream_id, COALESCE(out_seq, -1));

-- A key belongs to an account the engine created (and the PostgreSQL persister stored).
ALTER TABLE api_keys ADD CONSTRAINT api_keys_account_exists FOREIGN KEY (account) REFERENCES accounts (account);

ALTER TABLE accounts
    ADD COLUMN maker_bps integer,  -- the account's own fee rates (FeeRatesSet); NULL: the symbols' rates
    ADD COLUMN taker_bps integer;

-- Orders, current state: one row per order id. A replace that loses queue priority ends the old order
-- (status CANCELED, replaced_by) and starts a new one (replaces); one that keeps it changes the row in place.
CREATE TABLE orders (
    order_id        bigint  PRIMARY KEY,
    symbol          text    NOT NULL,
    account         bigint  NOT NULL,
    client_oid      text    NOT NULL,
    side            text    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    type            text    NOT NULL CHECK (type IN ('LIMIT', 'MARKET', 'LIMIT_MAKER')),
    tif             text    NOT NULL CHECK (tif IN ('GTC', 'IOC', 'FOK')),
    price           bigint  NOT NULL,  -- 0 for a market order
    orig_qty        bigint  NOT NULL,  -- lots: filled + open + whatever was canceled or expired
    quote_qty       bigint  NOT NULL,  -- a market buy by quote amount: that amount (units); else 0
    executed_qty    bigint  NOT NULL,
    cum_quote       bigint  NOT NULL,  -- quote units traded: sum of price x qty x quote_per_tick_lot
    leaves          bigint  NOT NULL,  -- open quantity (0 once the order is no longer open)
    status          text    NOT NULL CHECK (status IN ('NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELED', 'EXPIRED',
                                                       'EXPIRED_IN_MATCH')),
    cancel_reason   text,              -- wire.enums.CancelReason name, or REPLACED
    replaces        bigint,            -- the order id this one replaced (a replace without priority)
    replaced_by     bigint,
    created_ts      bigint  NOT NULL,
    updated_ts      bigint  NOT NULL,
    created_out_seq bigint  NOT NULL,
    updated_out_seq bigint  NOT NULL
);
-- Every index costs the persister on each row it writes (its speed is in docs/benchmarks.md), so only those the
-- history queries (persistence/history.py) need: an account's orders of a symbol by id (time windows filter these,
-- ids grow with time), by client order id, and its open ones.
CREATE INDEX orders_account_symbol ON orders (account, symbol, order_id);
CREATE INDEX orders_client_oid ON orders (account, symbol, client_oid, order_id);
CREATE INDEX orders_open ON orders (account, symbol, order_id) WHERE status IN ('NEW', 'PARTIALLY_FILLED');

-- Every change of every order, in out_seq order: the order's history. A trade changes two orders, so
-- (out_seq, order_id) is the key.
CREATE TABLE order_updates (
    out_seq      bigint NOT NULL,
    order_id     bigint NOT NULL,
    account      bigint NOT NULL,
    symbol       text   NOT NULL,
    ts           bigint NOT NULL,
    kind         text   NOT NULL CHECK (kind IN ('NEW', 'TRADE', 'CANCELED', 'EXPIRED', 'REPLACED', 'AMENDED')),
    status       text   NOT NULL,   -- the order's status after this change
    price        bigint NOT NULL,
    executed_qty bigint NOT NULL,   -- after this change
    leaves       bigint NOT NULL,   -- after this change
    last_qty     bigint NOT NULL DEFAULT 0,  -- a TRADE: the fill's quantity and price
    last_price   bigint NOT NULL DEFAULT 0,
    trade_id     bigint,
    PRIMARY KEY (out_seq, order_id)
);
CREATE INDEX order_updates_order ON order_updates (order_id, out_seq);

-- Trades, one row per fill, at the maker's price. Trade ids count per symbol.
CREATE TABLE trades (
    symbol         text   NOT NULL,
    trade_id       bigint NOT NULL,
    price          bigint NOT NULL,
    qty            bigint NOT NULL,
    quote_qty      bigint NOT NULL,  -- price x qty x quote_per_tick_lot, quote units
    taker_side     text   NOT NULL CHECK (taker_side IN ('BUY', 'SELL')),
    maker_order_id bigint NOT NULL,
    maker_account  bigint NOT NULL,
    maker_fee      bigint NOT NULL,  -- in the asset the maker received
    taker_order_id bigint NOT NULL,
    taker_account  bigint NOT NULL,
    taker_fee      bigint NOT NULL,
    ts             bigint NOT NULL,
    out_seq        bigint NOT NULL,
    PRIMARY KEY (symbol, trade_id)
);
-- an account's fills of a symbol (an order's fills: these, filtered by order id)
CREATE INDEX trades_maker ON trades (maker_account, symbol, trade_id);
CREATE INDEX trades_taker ON trades (taker_account, symbol, trade_id);

-- Balances, current state (BalanceChanged; the fee account's from the trades' fees).
CREATE TABLE balances (
    account bigint NOT NULL,
    asset   text   NOT NULL,
    free    bigint NOT NULL,
    locked  bigint NOT NULL,
    out_seq bigint NOT NULL,
    PRIMARY KEY (account, asset)
);

-- The double-entry ledger, as transfers: `amount` (> 0) of `asset` moved from the debit side to the credit side,
-- each side an (account, bucket free/locked/external), so every row is both entries of one movement and the ledger
-- balances by construction. Account -1 is the world outside the venue (deposits come from it, withdrawals go to
-- it); account -2 is the suspense account, which gives what the events could not explain (it stays untouched
-- while the engine keeps its invariants). An (account, bucket, asset) balance is what it was credited minus what
-- it was debited: the view ledger_lines gives both sides as signed lines to sum.
CREATE TABLE ledger (
    out_seq        bigint   NOT NULL,  -- the event the transfer comes from
    line           smallint NOT NULL,
    in_seq         bigint   NOT NULL,  -- the command
    ts             bigint   NOT NULL,
    kind           text     NOT NULL CHECK (kind IN ('DEPOSIT', 'WITHDRAWAL', 'LOCK', 'RELEASE', 'TRADE', 'FEE',
                                                     'SUSPENSE')),
    asset          text     NOT NULL,
    amount         bigint   NOT NULL CHECK (amount > 0),
    debit_account  bigint   NOT NULL,
    debit_bucket   text     NOT NULL CHECK (debit_bucket IN ('free', 'locked', 'external')),
    credit_account bigint   NOT NULL,
    credit_bucket  text     NOT NULL CHECK (credit_bucket IN ('free', 'locked', 'external')),
    symbol         text,               -- TRADE and FEE: the trade's symbol and id
    trade_id       bigint,
    PRIMARY KEY (out_seq, line)
);
CREATE INDEX ledger_debit ON ledger (debit_account, asset, out_seq);
CREATE INDEX ledger_credit ON ledger (credit_account, asset, out_seq);

CREATE VIEW ledger_lines AS
    SELECT out_seq, line, in_seq, ts, kind, credit_account AS account, credit_bucket AS bucket, asset, amount,
           symbol, trade_id
      FROM ledger
    UNION ALL
    SELECT out_seq, line, in_seq, ts, kind, debit_account, debit_bucket, asset, -amount, symbol, trade_id
      FROM ledger;

-- Refused commands (OrderRejected, CancelRejected, FundingRejected), for audits and support.
CREATE TABLE rejections (
    out_seq    bigint PRIMARY KEY,
    in_seq     bigint NOT NULL,
    ts         bigint NOT NULL,
    kind       text   NOT NULL CHECK (kind IN ('ORDER', 'CANCEL', 'FUNDING')),
    account    bigint NOT NULL,
    symbol     text   NOT NULL,  -- '' for funding
    order_id   bigint NOT NULL,  -- 0 when none
    client_oid text   NOT NULL,
    asset      text   NOT NULL,
    amount     bigint NOT NULL,
    reason     text   NOT NULL,  -- wire.reasons.RejectReason name
    detail     text   NOT NULL
);
CREATE INDEX rejections_account ON rejections (account, out_seq);
