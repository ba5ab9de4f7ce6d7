"""Pipeline benchmark: client -> sequencer -> Redis journal -> engine -> events back at the client.

One run of ``python -m bench.pipeline`` (about three minutes) starts a private venue exactly as the pipeline tests
do (tests.harness.Venue: a redis-server with AOF on and ``appendfsync everysec``, ``python -m sequencer`` and
``python -m engine``, ipc sockets in a temporary directory) and measures, in this order:

1. The machine's own limits against that same redis-server, with redis-py as the sequencer uses it: PING and one
   XADD per round trip, 256 XADDs per pipeline, one XADD carrying a 256-command journal batch per round trip; and
   what the sequencer's per-command pyzmq calls and codecs cost in this process.
2. Latency, open loop at a constant 1k/s and 10k/s from one load process: from each command's *scheduled* send
   time (so a late sender cannot hide queueing: coordinated omission corrected) to (a) its acknowledgement and
   (b) the first event it caused, seen on the engine's ``x/`` topic. HDR histograms (hdrhistogram).
3. Throughput: open-loop load at increasing offered rates, each for a few seconds, from one load process by
   default (``--workers``: a DEALER each, pipelining its sends and reading its acks in the same loop). A rate is
   *sustained* when the commands were sent, acknowledged and applied by the engine (its heartbeat ``in_seq``) at
   the offered rate and neither backlog (sent - acknowledged, journaled - engine) was left growing. BUSY answers
   are counted. The ramp stops after two failed rates and then bisects above the highest sustained one.

Other tenants of a shared machine are measured, not assumed away: the script waits for the machine to be quiet
before each step and repeats a step that other processes disturbed.

CPU time of every process (and of the engine's threads) is read from /proc for each step, so the report can say
where the two cores went. The report (bench/reports/pipeline.md) and its plots are written by this script.

The load is realistic order flow on BTCUSDT (config/venue.toml: tick 0.01, lot 0.00001, min notional 5 USDT):
passive limit orders a few ticks from a 100,000.00 USDT mid, cancels of the generator's own resting orders (by
client order id) and crossing LIMIT IOC orders, from thousands of accounts so self-trade prevention rarely fires.
"""
