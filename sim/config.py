"""The simulator's command line, and the plan it makes from it: which bots, over which protocol, at what rate, from
which accounts."""

from __future__ import annotations

import argparse
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

from gateways.fix.config import load_fix_config
from sim.accounts import FIRST_ACCOUNT
from wire.config import Settings

# Shares of the total order rate by kind of bot (renormalized over the kinds present): makers move quotes all
# the time, momentum traders only trade on a signal
SHARES = {"maker": 0.5, "taker": 0.3, "momentum": 0.2}
ACCOUNT_SHARE = 0.4  # of the venue's per-account order limit one account may use: room for bursts and retries
WEIGHT_SHARE = 0.5  # of the per-IP request weight the simulator may use: the rest is for everyone else on this host


class ConfigError(Exception):
    """A configuration the simulator cannot run: the message says what to change."""


@dataclass(frozen=True, slots=True)
class Config:
    url: str
    ws_url: str
    fix_host: str
    fix_port: int
    symbols: tuple[str, ...]  # empty: every symbol exchangeInfo lists
    rate: float  # orders (new orders, replaces, cancels) per second, all bots together
    seed: int
    duration: float | None  # s; None: until stopped
    makers: int
    takers: int
    momentum: int
    fix: bool
    state_dir: Path
    wait: float  # s the venue may take to come up at start
    levels: int  # each market maker's quotes per side and symbol
    first_account: int  # the bots' accounts are numbered from here


@dataclass(frozen=True, slots=True)
class BotPlan:
    name: str
    kind: str  # maker, taker, momentum
    protocol: str  # rest, ws, fix
    rate: float  # its requests per second
    accounts: tuple[int, ...]


def parse(argv: list[str], settings: Settings) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m sim",
        description="Bots that trade on the venue through its public APIs (REST, WebSocket API, FIX): market "
        "makers, noise takers and momentum traders (docs/operations.md, 'Market simulator').",
    )
    parser.add_argument("--url", default=f"http://{settings.frontdoor_host}:{settings.frontdoor_port}",
                        help="the venue's HTTP front door (REST and market data; default %(default)s)")  # fmt: skip
    parser.add_argument("--ws-url", help="its WebSocket front (WebSocket API, streams; default: --url as ws://)")
    parser.add_argument("--fix-host", default=settings.fix_host, help="the FIX gateway (default %(default)s)")
    fix_port = settings.fix_port or load_fix_config(settings.fix_config_file or None).port  # as the gateway's
    parser.add_argument("--fix-port", type=int, default=fix_port, help="(default %(default)s)")
    parser.add_argument("--symbols", default="", help="comma separated (default: every symbol of exchangeInfo)")
    parser.add_argument("--rate", type=float, default=20.0, help="orders per second, all bots (default %(default)s)")
    parser.add_argument("--seed", type=int, help="the same seed and configuration give the same decisions "
                        "(default: a random one, printed)")  # fmt: skip
    parser.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C or SIGTERM)")
    parser.add_argument("--makers", type=int, default=2, help="market makers (default %(default)s)")
    parser.add_argument("--takers", type=int, default=3, help="noise takers (default %(default)s)")
    parser.add_argument("--momentum", type=int, default=2, help="momentum traders (default %(default)s)")
    parser.add_argument("--levels", type=int, default=3, help="each maker's quotes per side (default %(default)s)")
    parser.add_argument("--no-fix", action="store_true", help="no bot on FIX (every bot on REST or the WS API)")
    parser.add_argument("--state-dir", default="var/sim", help="the bots' API keys (default %(default)s)")
    parser.add_argument("--wait", type=float, default=300.0, help="seconds the venue may take to come up")
    parser.add_argument("--first-account", type=int, default=FIRST_ACCOUNT,
                        help="the bots' accounts are numbered from here (default %(default)s)")  # fmt: skip
    args = parser.parse_args(argv)
    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    for symbol in symbols:
        if not re.fullmatch(r"[A-Z0-9]{2,20}", symbol):
            raise ConfigError(f"--symbols: {symbol!r} is not a symbol name (e.g. BTCUSDT)")
    if not args.rate > 0 or math.isinf(args.rate):
        raise ConfigError(f"--rate must be a positive number of orders per second, not {args.rate}")
    if min(args.makers, args.takers, args.momentum) < 0 or args.makers + args.takers + args.momentum == 0:
        raise ConfigError("--makers, --takers and --momentum count bots: none negative, at least one bot")
    if args.first_account < 1:
        raise ConfigError("--first-account must be a positive account number")
    if args.levels < 1:
        raise ConfigError("--levels must be at least 1")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError("--duration must be a positive number of seconds")
    url = args.url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url must be an http:// URL, not {args.url!r}")
    ws_url = (args.ws_url or "ws" + url.removeprefix("http")).rstrip("/")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    return Config(url=url, ws_url=ws_url, fix_host=args.fix_host, fix_port=args.fix_port, symbols=symbols,
                  rate=args.rate, seed=seed, duration=args.duration, makers=args.makers, takers=args.takers,
                  momentum=args.momentum, fix=not args.no_fix, state_dir=Path(args.state_dir), wait=args.wait,
                  levels=args.levels, first_account=args.first_account)  # fmt: skip


def plan(config: Config, orders_per_10s: int) -> list[BotPlan]:
    """The bots in a fixed order (makers, takers, momentum), each with its rate and enough accounts that none
    uses more than ``ACCOUNT_SHARE`` of the venue's order limit. One bot trades over FIX (the first taker, else
    the first bot; the FIX session is one account, so its rate is capped at one account's), one over the
    WebSocket API (the first maker, else the first bot left), the rest over REST."""
    counts = {"maker": config.makers, "taker": config.takers, "momentum": config.momentum}
    present = {kind: share for kind, share in SHARES.items() if counts[kind]}
    total = sum(present.values())
    per_account = ACCOUNT_SHARE * orders_per_10s / 10
    bots = [(f"{kind}-{i + 1}", kind) for kind in SHARES for i in range(counts[kind])]
    fix_bot = ""
    if config.fix:
        fix_bot = next((name for name, kind in bots if kind == "taker"), bots[0][0])
    ws_bot = next((name for name, kind in bots if kind == "maker" and name != fix_bot), "")
    ws_bot = ws_bot or next((name for name, _ in bots if name != fix_bot), "")
    out: list[BotPlan] = []
    account = config.first_account
    for name, kind in bots:
        rate = config.rate * present[kind] / total / counts[kind]
        protocol = "fix" if name == fix_bot else "ws" if name == ws_bot else "rest"
        n = 1 if protocol == "fix" else max(1, math.ceil(rate / per_account - 1e-9))
        if protocol == "fix":
            rate = min(rate, per_account)
        out.append(BotPlan(name, kind, protocol, rate, tuple(range(account, account + n))))
        account += n
    return out
