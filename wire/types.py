"""Type aliases shared by every package: they document units, not new types."""

from __future__ import annotations

Seq = int  # a gap-free sequence number (in_seq from the sequencer, out_seq from the engine)
TsNs = int  # nanoseconds since the Unix epoch, stamped by the sequencer
OrderId = int  # engine-assigned order id, unique per engine
TradeId = int  # engine-assigned trade id, unique per symbol
AccountId = int
Ticks = int  # a price as an integer number of tick sizes
Lots = int  # a quantity as an integer number of lot sizes
