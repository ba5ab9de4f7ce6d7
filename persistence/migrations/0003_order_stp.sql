-- 0003: each order's self-trade prevention mode (the engine's OrderAccepted event carries it now), so that order
-- queries and execution reports say the mode the order has instead of always EXPIRE_TAKER. Orders written before
-- this migration get EXPIRE_TAKER: their mode was not recorded.
ALTER TABLE orders ADD COLUMN stp text NOT NULL DEFAULT 'EXPIRE_TAKER'
    CHECK (stp IN ('EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'));
