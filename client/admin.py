"""``python -m client.admin``: the operator's funding commands, journaled through the sequencer like any other.

    python -m client.admin create-account 7
    python -m client.admin deposit 7 USDT 10000
    python -m client.admin withdraw 7 BTC 0.5
    python -m client.admin set-fees 7 2 5        # maker 2 bps, taker 5 bps on every symbol
    python -m client.admin set-fees 7 default    # back to the symbols' rates

Amounts are decimals of the asset (converted exactly with the venue's ``[[assets]]`` decimals). The command waits
for the engine's answer to *this* command (the event carrying its in_seq) and prints it; the exit code is 0 on
success, 1 when the engine refused (unknown account, insufficient funds, ...), 2 when the venue cannot be reached
or the input is invalid.
"""

from __future__ import annotations

import argparse
import sys
import time

import redis

from client.events import EventFollower
from client.sequencer import SequencerClient
from engine.events_stream import last_out_seq
from wire import keys
from wire.commands import CreateAccount, Deposit, SetFeeRates, Withdraw
from wire.config import Settings, load_settings
from wire.errors import CommandRefused, ConfigError, SequencerUnavailable
from wire.events import AccountCreated, BalanceChanged, Event, FeeRatesSet, FundingRejected
from wire.venue import DEFAULT_VENUE, Venue, load_venue


class AdminError(Exception):
    """A message for the operator and the exit code that goes with it."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def build(
    args: argparse.Namespace, venue: Venue, client: SequencerClient
) -> CreateAccount | Deposit | Withdraw | SetFeeRates:
    if args.action == "create-account":
        return CreateAccount(client.src, client.next_req(), args.account)
    if args.action == "set-fees":
        return SetFeeRates(client.src, client.next_req(), args.account, *_rates(args.maker, args.taker))
    asset = next((a for a in venue.assets if a.name == args.asset), None)
    if asset is None:
        names = ", ".join(a.name for a in venue.assets)
        raise AdminError(f"unknown asset {args.asset!r} (the venue lists {names})", 2)
    try:
        units = asset.to_units(args.amount)
    except ValueError as exc:
        raise AdminError(str(exc), 2) from None
    kind = Deposit if args.action == "deposit" else Withdraw
    return kind(client.src, client.next_req(), args.account, asset.name, units)


def _rates(maker: str, taker: str | None) -> tuple[int, int]:
    if maker == "default" and taker is None:
        return -1, -1
    if taker is None:
        raise AdminError("set-fees needs MAKER_BPS TAKER_BPS, or 'default'", 2)
    try:
        return int(maker), int(taker)
    except ValueError:
        raise AdminError(f"fee rates are whole basis points, not {maker!r} {taker!r}", 2) from None


def describe(event: Event, venue: Venue) -> str:
    if isinstance(event, AccountCreated):
        return f"account {event.account} created"
    if isinstance(event, FeeRatesSet):
        if event.maker_bps == -1:
            return f"account {event.account} pays the symbols' fee rates"
        return f"account {event.account} fees: maker {event.maker_bps} bps, taker {event.taker_bps} bps"
    if isinstance(event, BalanceChanged):
        asset = next(a for a in venue.assets if a.name == event.asset)
        free, locked = asset.from_units(event.free), asset.from_units(event.locked)
        return f"account {event.account} {event.asset}: free {free:f}, locked {locked:f}"
    assert isinstance(event, FundingRejected)
    what = event.reason.name.lower().replace("_", " ")
    return f"refused: {what} ({event.detail})"


def run(argv: list[str], settings: Settings, timeout: float = 5.0) -> str:
    parser = argparse.ArgumentParser(
        prog="python -m client.admin", description="Create and fund accounts, set their fee rates."
    )
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("create-account", help="open an account").add_argument("account", type=int)
    for action in ("deposit", "withdraw"):
        p = sub.add_parser(action, help=f"{action} an amount of an asset")
        p.add_argument("account", type=int)
        p.add_argument("asset")
        p.add_argument("amount", help="a decimal amount, e.g. 1000.5")
    fees = sub.add_parser("set-fees", help="give an account its own fee rates on every symbol, or 'default'")
    fees.add_argument("account", type=int)
    fees.add_argument("maker", help="maker rate in basis points, or 'default' for the symbols' rates")
    fees.add_argument("taker", nargs="?", help="taker rate in basis points")
    args = parser.parse_args(argv)
    try:
        venue = load_venue(settings.venue_file or DEFAULT_VENUE)
    except ConfigError as exc:
        raise AdminError(str(exc), 2) from None
    r = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    try:
        after = last_out_seq(r, keys.events(venue.shard))
    except redis.ConnectionError as exc:
        raise AdminError(f"cannot reach Redis at {settings.redis_url}: {exc}", 2) from None
    follower = EventFollower(r, venue.shard, settings, after=after)
    client = SequencerClient(settings, name="admin", timeout=timeout)
    try:
        cmd = build(args, venue, client)
        try:
            ack = client.submit(cmd)
        except SequencerUnavailable as exc:
            raise AdminError(f"sequencer not reachable at {settings.sequencer_endpoint}: {exc}", 2) from None
        except CommandRefused as exc:
            raise AdminError(f"sequencer refused the command: {exc}", 2) from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in follower.poll(0.1):
                if event.in_seq == ack.in_seq:
                    text = describe(event, venue)
                    if isinstance(event, FundingRejected):
                        raise AdminError(text, 1)
                    return text
        raise AdminError(f"journaled as in_seq {ack.in_seq}, but the engine did not answer within {timeout} s", 2)
    finally:
        client.close()
        follower.close()
        r.close()


def main(argv: list[str] | None = None) -> int:
    try:
        print(run(sys.argv[1:] if argv is None else argv, load_settings()))
    except AdminError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
