"""The PostgreSQL persister as a process, on a real venue (Redis, sequencer, engine) and a real PostgreSQL."""

from __future__ import annotations

import time
import urllib.request

import pytest

from engine.events_stream import read_events
from engine.replay import main as replay_main
from engine.replay import replay
from persistence.postgres import CONSUMER
from tests.harness import PostgresServer, Service, Venue, free_port, wait_for
from tests.persistence.checks import add_garbage, assert_database_matches, fetch, offset
from tests.pipeline.test_chaos import Load
from wire import keys
from wire.events import Event
from wire.venue import load_venue

READY = "postgres persister at out_seq"


def persister(venue: Venue, pg_url: str, metrics_port: int = 0) -> Service:
    env = dict(venue.env, MERCURY_POSTGRES_URL=pg_url, MERCURY_METRICS_PORT=str(metrics_port))
    return Service("persistence.postgres", env, venue.dir / "persister.log", READY)


def lag(port: int) -> tuple[float, float]:
    """The persister's lag gauges (events, seconds), from its Prometheus endpoint."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for line in text.splitlines():
        for name in ("mercury_persister_lag_events", "mercury_persister_lag_seconds"):
            if line.startswith(name + '{consumer="postgres"}'):
                values[name] = float(line.split()[-1])
    return values["mercury_persister_lag_events"], values["mercury_persister_lag_seconds"]


def run_load(venue: Venue, seconds: float, rate: float = 600.0) -> Load:
    load = Load(venue.client("load", timeout=2.0), rate=rate)
    load.start()
    time.sleep(seconds)
    load.stop.set()
    load.join(10)
    assert load.error is None, load.error
    venue.wait_engine(max(load.acked))
    return load


def replayed(venue: Venue) -> tuple[object, list[Event]]:
    events: list[Event] = []
    r = venue.r()
    try:
        result = replay(r, load_venue(venue.settings.venue_file or "config/venue.toml"), keep=events)
    finally:
        r.close()
    return result.engine, events


def wait_caught_up(venue: Venue, pg_url: str, timeout: float = 60) -> int:
    target = venue.stored_out_seq()
    wait_for(
        lambda: offset(pg_url) >= target, timeout, f"the persister to reach out_seq {target} (at {offset(pg_url)})"
    )
    return target


@pytest.mark.timeout(180)
def test_after_a_random_flow_the_database_holds_the_engines_trades_orders_and_balances(
    venue: Venue, pg_url: str
) -> None:
    venue.fund(*range(1, 7), units=10**11)
    p = persister(venue, pg_url)
    p.start()
    run_load(venue, 4.0)
    wait_caught_up(venue, pg_url)
    engine, events = replayed(venue)
    assert sum(1 for ev in events if type(ev).__name__ == "TradeExecuted") > 50  # the flow really traded
    assert_database_matches(pg_url, engine, events)  # type: ignore[arg-type]
    assert p.stop() == 0
    assert "ERROR" not in p.log()


@pytest.mark.timeout(240)
def test_kill9_while_it_writes_a_backlog_loses_no_row_and_doubles_none(venue: Venue, pg_url: str) -> None:
    venue.fund(*range(1, 7), units=10**11)
    run_load(venue, 8.0, rate=2000)  # a backlog: the persister starts later and writes for a while
    p = persister(venue, pg_url)
    target = venue.stored_out_seq()
    kills = 0
    try:
        while offset(pg_url) < target and kills < 6:
            p.start()  # returns once it is ready: from now on it writes batches back to back
            time.sleep(0.05 + 0.03 * kills)  # so a kill lands inside one
            if offset(pg_url) >= target:
                break
            p.kill9()
            kills += 1
        assert kills >= 2, "the persister caught up before it could be killed twice: make the backlog bigger"
        if not p.alive():
            p.start()
        wait_caught_up(venue, pg_url)
        engine, events = replayed(venue)
        assert_database_matches(pg_url, engine, events)  # type: ignore[arg-type]
    finally:
        p.stop()
    assert "ERROR" not in p.log()


@pytest.mark.timeout(120)
def test_a_malformed_entry_is_quarantined_with_its_reason_and_the_persister_goes_on(venue: Venue, pg_url: str) -> None:
    venue.fund(1, 2, units=10**11)
    p = persister(venue, pg_url)
    try:
        p.start()
        wait_caught_up(venue, pg_url)
        # garbage, and a list holding one event of the wrong shape ([103, 'x', 2]: out_seq not an int)
        last = add_garbage(venue, b"\xc1 not msgpack", b"\x91\x93\x67\xa1x\x02")
        wait_caught_up(venue, pg_url)
        rows = fetch(pg_url, "SELECT consumer, out_seq, stream_id, reason FROM quarantine ORDER BY id")
        assert [(q["consumer"], q["stream_id"]) for q in rows] == [(CONSUMER, f"{last}-1"), (CONSUMER, f"{last}-2")]
        assert rows[0]["out_seq"] is None and "bad event batch" in rows[0]["reason"]
        assert rows[1]["out_seq"] is None and "bad event" in rows[1]["reason"]  # [103, 'x', 2]: out_seq not an int
        assert {r["account"] for r in fetch(pg_url, "SELECT account FROM accounts")} == {1, 2, 9_999}
        # restarted, it resumes after the garbage and quarantines nothing twice
        p.stop()
        p.start()
        venue.fund(4, units=10**11)
        wait_caught_up(venue, pg_url)
        assert len(fetch(pg_url, "SELECT id FROM quarantine")) == 2
        p.stop()
    finally:
        p.stop()
    assert "quarantined 1 item(s)" in p.log()


@pytest.mark.timeout(180)
def test_postgresql_down_the_persister_retries_reports_its_lag_and_loses_nothing(
    venue: Venue,
) -> None:
    server = PostgresServer()
    server.start()
    try:
        url = server.create_database("own")
        venue.fund(*range(1, 7), units=10**11)
        port = free_port()
        p = persister(venue, url, metrics_port=port)
        p.start()
        wait_caught_up(venue, url)
        wait_for(lambda: lag(port) == (0.0, 0.0), 5, "a lag of 0 once caught up")
        server.stop_server()  # PostgreSQL goes away under load
        run_load(venue, 2.0)
        time.sleep(1.5)
        assert p.alive()
        log = p.log()
        assert "starting over from the stored offset" in log
        events_behind, seconds_behind = lag(port)  # reported while it waits
        assert events_behind > 100 and seconds_behind > 1.0, (events_behind, seconds_behind)
        server.start()
        wait_caught_up(venue, url)
        wait_for(lambda: lag(port) == (0.0, 0.0), 5, "the lag to go back to 0")
        engine, events = replayed(venue)
        assert_database_matches(url, engine, events)  # type: ignore[arg-type]
        p.stop()
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_the_events_stream_is_trimmed_only_below_every_registered_consumer(venue: Venue, pg_url: str) -> None:
    venue.fund(*range(1, 4), units=10**11)
    r = venue.r()
    r.hset(keys.consumers(venue.shard), "slow-reader", 0)  # a registered consumer that confirmed nothing yet
    p = persister(venue, pg_url)
    p.start()
    run_load(venue, 1.0)
    wait_caught_up(venue, pg_url)
    before = r.xlen(keys.events(venue.shard))
    time.sleep(0.5)
    assert r.xlen(keys.events(venue.shard)) == before  # held back by slow-reader
    assert len(list(read_events(r, keys.events(venue.shard)))) == venue.stored_out_seq()
    r.hset(keys.consumers(venue.shard), "slow-reader", venue.stored_out_seq())
    p.stop()
    p.start()  # trims at start, then every 10 s
    wait_for(lambda: r.xlen(keys.events(venue.shard)) < before, 15, "the persister to trim the events stream")
    assert r.xlen(keys.events(venue.shard)) >= 1  # the last entry stays: the engine resumes its out_seq there
    assert replay_main(["--redis", venue.redis.url, "--check-stream"]) == 0  # the audit compares what is left
    p.stop()
    r.close()
