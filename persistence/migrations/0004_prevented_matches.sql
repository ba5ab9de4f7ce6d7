-- 0004: self-trade prevention's record (the engine's MatchPrevented event, snapshot format 5): Binance's prevented
-- matches, for GET /api/v3/myPreventedMatches, and on each order what self-trade prevention expired of it and the
-- prevented match that did (Binance's preventedQuantity and preventedMatchId). Orders written before it read 0 and
-- none: their engine did not record the stops.
-- Binance's NONE mode too (an order that trades with its own orders).
ALTER TABLE orders DROP CONSTRAINT orders_stp_check,
    ADD CONSTRAINT orders_stp_check CHECK (stp IN ('NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'));
ALTER TABLE orders ADD COLUMN prevented_qty bigint NOT NULL DEFAULT 0 CHECK (prevented_qty >= 0);
ALTER TABLE orders ADD COLUMN prevented_match_id bigint;

CREATE TABLE prevented_matches (
    symbol         text   NOT NULL,
    match_id       bigint NOT NULL,  -- per symbol, from 1
    account        bigint NOT NULL,  -- both orders are this account's
    taker_order_id bigint NOT NULL,
    maker_order_id bigint NOT NULL,
    price          bigint NOT NULL,  -- the maker's price, where the trade would have been
    mode           text   NOT NULL CHECK (mode IN ('EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH')),
    taker_qty      bigint NOT NULL,  -- open quantity expired of the taker (0: it went on)
    maker_qty      bigint NOT NULL,  -- ... of the maker (0: it stays on the book)
    ts             bigint NOT NULL,
    out_seq        bigint NOT NULL,
    PRIMARY KEY (symbol, match_id)
);
CREATE INDEX prevented_matches_taker ON prevented_matches (account, symbol, taker_order_id);
CREATE INDEX prevented_matches_maker ON prevented_matches (account, symbol, maker_order_id);
