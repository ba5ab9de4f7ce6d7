"""The simulator's life: wait for the venue, set up the accounts, run every bot at its pace until stopped, then
cancel what the bots left in the books.

Nothing a bot does can stop the process: a refusal is counted, a lost connection is made again, an unexpected
error in a bot's step is logged and the bot goes on (under ``./mercury start`` the supervisor would stop the whole
venue if this process ended).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

import aiohttp

from gateways.fix.config import DATA_DICTIONARY  # QuickFIX's own FIX 4.4 data dictionary, where it is installed
from sim import accounts
from sim.bots import Bot, MarketMaker, Momentum, NoiseTaker
from sim.config import WEIGHT_SHARE, BotPlan, Config, ConfigError, plan
from sim.fairvalue import FairValue, seeded
from sim.fix import FixTrader
from sim.grid import SymbolRules, rules_by_symbol
from sim.marketdata import MarketView, follow_market, last_prices
from sim.orders import Action, Cancel, Outcome, Report
from sim.rest import Http, RestTrader, Unavailable
from sim.stats import Stats
from sim.wsapi import WsApi, WsTrader
from wire.config import Settings

log = logging.getLogger("sim")

FAIR_STEP = 1.0  # s between two steps of the fair values
SUMMARY_EVERY = 10.0  # s
STOP_TIMEOUT = 10.0  # s for cancelling the bots' orders at the end
RUN_FILE = "run.json"
# Rough prices, in US dollars, for symbols the venue has never traded: the fair value starts at the ratio of its
# assets' prices; a symbol that has traded starts from its last trade
REFERENCE_USD = {"BTC": "60000", "ETH": "3000", "BNB": "600", "SOL": "150", "XRP": "0.5", "DOGE": "0.15",
                 "USDT": "1", "USDC": "1", "FDUSD": "1", "BUSD": "1", "DAI": "1"}  # fmt: skip


class Trader(Protocol):
    """One account on one protocol (sim/rest.py, sim/wsapi.py, sim/fix.py)."""

    account: int
    protocol: str

    async def start(self) -> None: ...
    async def ready(self) -> None: ...
    async def execute(self, action: Action) -> Outcome: ...
    async def cancel_all(self, symbol: str) -> Outcome: ...
    async def close(self) -> None: ...


def reference_price(rules: SymbolRules) -> Decimal | None:
    base, quote = REFERENCE_USD.get(rules.base), REFERENCE_USD.get(rules.quote)
    if base is None or quote is None:
        return None
    return rules.nearest_price(Decimal(base) / Decimal(quote))


def start_prices(rules: dict[str, SymbolRules], last: dict[str, Decimal],
                 say: Callable[[str], None]) -> dict[str, Decimal]:  # fmt: skip
    """Where each fair value starts: the last trade, else the reference prices' ratio, else 100."""
    out: dict[str, Decimal] = {}
    for symbol, r in rules.items():
        price = last.get(symbol) or reference_price(r)
        if price is None:
            price = r.nearest_price(Decimal(100))
            say(f"sim: {symbol} has never traded and its assets have no reference price: it starts at {price}")
        out[symbol] = price
    return out


class Pacer:
    """At most ``rate`` steps a second, evenly spaced; a late step does not make the next ones bunch up."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next > now:
            await asyncio.sleep(self.next - now)
            now = self.next
        self.next = max(self.next, now) + self.interval


class Simulator:
    def __init__(self, config: Config, settings: Settings, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.settings = settings
        self.say = say
        self.stats = Stats()
        self.view = MarketView()
        self.bots: list[tuple[Bot, list[Trader], BotPlan]] = []
        self.traders: list[Trader] = []
        self.stop = asyncio.Event()
        self.started = time.monotonic()
        self.rules: dict[str, SymbolRules] = {}
        self.walks: dict[str, FairValue] = {}

    # start-up ----------------------------------------------------------------------------------------------------

    async def _venue(self, http: Http) -> dict[str, SymbolRules]:
        """exchangeInfo's symbols (those asked for), retried until the venue answers or ``--wait`` runs out."""
        deadline = time.monotonic() + self.config.wait
        said = False
        while True:
            try:
                info = await http.public("/api/v3/exchangeInfo")
                await http.sync_clock()
                break
            except Unavailable as exc:
                if time.monotonic() > deadline:
                    raise accounts.SetupError(f"the venue at {self.config.url} did not answer within "
                                              f"{self.config.wait:.0f} s: {exc}") from None  # fmt: skip
                if not said:
                    self.say(f"sim: waiting for the venue at {self.config.url} ({exc})")
                    said = True
                await asyncio.sleep(1)
        known = rules_by_symbol(info)
        wanted = self.config.symbols or tuple(known)
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise ConfigError(f"unknown symbol {', '.join(unknown)}: the venue lists {', '.join(known) or 'none'}")
        if not wanted:
            raise ConfigError("the venue lists no trading symbol")
        return {s: known[s] for s in wanted}

    async def _last_prices(self, http: Http) -> dict[str, Decimal]:
        deadline = time.monotonic() + self.config.wait
        while True:
            try:
                return await last_prices(http, list(self.rules))
            except Unavailable as exc:  # a feed still loading its state answers 503
                if time.monotonic() > deadline:
                    raise accounts.SetupError(f"no market data from {self.config.url}: {exc}") from None
                await asyncio.sleep(1)

    def _traders(self, http: Http, bot_plan: BotPlan, creds: dict[int, accounts.Credentials],
                 bot: Bot) -> list[Trader]:  # fmt: skip
        c = self.config
        out: list[Trader] = []
        ws_api = WsApi(http) if bot_plan.protocol == "ws" else None
        for slot, account in enumerate(bot_plan.accounts):
            key, secret = creds[account].key, creds[account].secret
            on_report = self._on_report(bot, slot)
            if bot_plan.protocol == "fix":
                out.append(FixTrader(account, key, secret, c.fix_host, c.fix_port, c.state_dir / "fix",
                                     DATA_DICTIONARY, on_report))  # fmt: skip
            elif ws_api is not None:
                out.append(WsTrader(ws_api, account, key, secret, on_report))
            else:
                out.append(RestTrader(http, account, key, secret, on_report))
        return out

    def _bot(self, bot_plan: BotPlan, run_tag: str) -> Bot:
        rng = seeded(self.config.seed, "bot", bot_plan.name)
        # client order ids: unique per run (the tag), then per bot, then counted: 1 to 36 of [A-Za-z0-9-]
        prefix = f"s{run_tag}{bot_plan.name[0]}{bot_plan.name.rsplit('-', 1)[1]}-"
        slots = len(bot_plan.accounts)
        if bot_plan.kind == "maker":
            return MarketMaker(bot_plan.name, rng, self.rules, slots, prefix, self.config.levels)
        if bot_plan.kind == "taker":
            return NoiseTaker(bot_plan.name, rng, self.rules, slots, prefix)
        return Momentum(bot_plan.name, rng, self.rules, slots, prefix)

    def _write_run(self, plans: list[BotPlan], summary: dict[str, Any] | None = None) -> None:
        """What this run is (and, at the end, what it did), for operators and tests: ``<state dir>/run.json``."""
        c = self.config
        record = {"seed": c.seed, "url": c.url, "ws_url": c.ws_url, "rate": c.rate, "symbols": list(self.rules),
                  "started": datetime.now(UTC).isoformat(timespec="seconds"),
                  "bots": [{"name": p.name, "kind": p.kind, "protocol": p.protocol, "rate": round(p.rate, 3),
                            "accounts": list(p.accounts)} for p in plans]}  # fmt: skip
        path = c.state_dir / RUN_FILE
        if summary is not None and path.exists():
            record = json.loads(path.read_text()) | {"summary": summary}
        c.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # written whole then moved into place: a reader (an operator's tail, a test's poll) never sees it half-written
        fresh = path.with_suffix(".tmp")
        fresh.write_text(json.dumps(record, indent=1) + "\n")
        os.replace(fresh, path)

    # running -------------------------------------------------------------------------------------------------------

    def _on_report(self, bot: Bot, slot: int) -> Callable[[Report], None]:
        def received(report: Report) -> None:
            if report.fill_qty:
                self.stats.fills += 1
            bot.on_report(report, slot)

        return received

    async def _drive(self, bot: Bot, traders: list[Trader], rate: float) -> None:
        pacer = Pacer(rate)
        while not self.stop.is_set():
            await pacer.wait()
            try:
                if bot.reset_needed:
                    if await self._cancel_all(traders):  # else: tried again at the next step
                        bot.forget_orders()
                    continue
                action = bot.decide(self.view)
                if action is None:
                    continue
                trader = traders[action.slot]
                await trader.ready()
                outcome = await trader.execute(action)
                if isinstance(action, Cancel):
                    self.stats.cancel(outcome)
                else:
                    self.stats.order(trader.protocol, outcome, bot.name)
                bot.settle(action, outcome)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one step must not end the bot, let alone the process
                log.exception("%s: step failed", bot.name)
                self.stats.errors["internal"] += 1
                await asyncio.sleep(1)

    async def _cancel_all(self, traders: list[Trader]) -> bool:
        """Cancel every open order of these accounts, symbol by symbol; whether every cancel got an answer."""
        for trader in traders:
            for symbol in self.rules:
                try:
                    outcome = await trader.cancel_all(symbol)
                except Exception:
                    log.exception("account %d: cancelling its %s orders failed", trader.account, symbol)
                    self.stats.errors["internal"] += 1
                    return False
                if outcome.transport:
                    return False  # not connected: nothing more will get through now
        return True

    async def _fair_clock(self, walks: dict[str, FairValue]) -> None:
        while True:
            await asyncio.sleep(FAIR_STEP)
            for symbol, walk in walks.items():
                self.view.fair[symbol] = walk.step()

    async def _summaries(self) -> None:
        while True:
            await asyncio.sleep(SUMMARY_EVERY)
            self.say(self.stats.line(time.monotonic() - self.started))

    async def _setup(self, http: Http) -> list[BotPlan]:
        """The venue's symbols, the fair values' start, the plan, the accounts with their keys, the bots."""
        c = self.config
        self.rules = await self._venue(http)
        last = await self._last_prices(http)
        starts = start_prices(self.rules, last, self.say)
        plans = plan(c, self.settings.orders_per_10s)
        if c.rate * 60 > WEIGHT_SHARE * self.settings.weight_per_minute:
            self.say(f"sim: warning: {c.rate:g} orders/s is more than half the venue's request weight per IP "
                     f"({self.settings.weight_per_minute}/min): expect 429s (the bots back off)")  # fmt: skip
        wanted = [a for p in plans for a in p.accounts]
        creds = await accounts.ensure(wanted, accounts.funding(self.rules, starts), self.settings, c.state_dir,
                                      c.wait, self.say)  # fmt: skip
        self._write_run(plans)
        run_tag = format(int(time.time()) % 36**5, "x")[-5:]  # client order ids differ from the last run's
        for p in plans:
            bot = self._bot(p, run_tag)
            traders = self._traders(http, p, creds, bot)
            self.bots.append((bot, traders, p))
            self.traders += traders
        self.say(f"sim: seed {c.seed}, {len(plans)} bots on {', '.join(self.rules)}, up to {c.rate:g} orders/s, "
                 f"accounts {wanted[0]}-{wanted[-1]}, keys in {c.state_dir / accounts.STATE_FILE}")  # fmt: skip
        for p in plans:
            self.say(f"sim:   {p.name} over {p.protocol}: {p.rate:.2f} orders/s from account(s) "
                     f"{', '.join(map(str, p.accounts))}")  # fmt: skip
        self.walks = {s: FairValue(r, starts[s], seeded(c.seed, "fair", s)) for s, r in self.rules.items()}
        self.view.fair.update({s: w.price for s, w in self.walks.items()})
        self.view.last.update(last)
        return plans

    async def run(self) -> int:
        c = self.config
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            http = Http(session, c.url, c.ws_url)
            setup = asyncio.create_task(self._setup(http))
            stopped = asyncio.create_task(self.stop.wait())
            await asyncio.wait([setup, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not setup.done():  # stopped while waiting for the venue: nothing to undo
                setup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await setup
                return 0
            stopped.cancel()
            plans = setup.result()
            try:
                await self._trade(http)
            finally:  # whatever happened: QuickFIX's threads must be stopped before the interpreter goes
                for trader in self.traders:
                    try:
                        await trader.close()
                    except Exception:
                        log.exception("closing account %d's connection failed", trader.account)
            self.say(self.stats.line(time.monotonic() - self.started) + " (final)")
            self._write_run(plans, self.stats.as_json())
        return 0

    async def _trade(self, http: Http) -> None:
        """Every bot at its pace until stopped (or ``--duration`` is over); then their orders are canceled."""
        for trader in self.traders:
            await trader.start()
        tasks = [asyncio.create_task(follow_market(http, list(self.rules), self.view), name="trades"),
                 asyncio.create_task(self._fair_clock(self.walks), name="fair"),
                 asyncio.create_task(self._summaries(), name="summaries")]  # fmt: skip
        try:
            # orders a previous run left (it was killed): its quotes would sit in the books unknown to the bots
            for _, traders, _ in self.bots:
                await traders[0].ready()
                await self._cancel_all(traders)
            tasks += [asyncio.create_task(self._drive(bot, traders, p.rate), name=bot.name)
                      for bot, traders, p in self.bots]  # fmt: skip
            self.started = time.monotonic()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.duration):
                    await self.stop.wait()
        finally:
            self.stop.set()  # the bots' loops end at their next step
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT)
        # best effort, and bounded: a venue that is down must not keep the process from stopping
        await asyncio.wait([asyncio.create_task(self._cancel_all([t])) for t in self.traders], timeout=STOP_TIMEOUT)


async def main_async(config: Config, settings: Settings, say: Callable[[str], None] = print) -> int:
    sim = Simulator(config, settings, say)
    signals = []

    def stop(signum: int) -> None:
        """The first Ctrl-C or SIGTERM stops cleanly (orders canceled, bounded in time); a second one at once."""
        signals.append(signum)
        if len(signals) > 1:
            say("sim: stopped at once (a second signal)")
            os._exit(128 + signum)
        sim.stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    return await sim.run()
