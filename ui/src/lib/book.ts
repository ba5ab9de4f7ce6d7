// The local order book, kept as Binance documents for spot and as client/marketbook.py (the reference client)
// does: buffer the diff stream, load a REST snapshot, drop diffs it already holds, check that the first one left
// spans lastUpdateId + 1, then apply each diff only if its U is the previous u + 1, and check the feed's CRC32 of
// the top 10 levels (`cs`). A gap or a checksum that differs throws BookOutOfSync: the caller starts again.
// Prices and quantities stay the strings the feed sent, so the checksum covers the same text.

import { crc32 } from "./crc32";
import { isZero } from "./decimal";

export const CHECKSUM_LEVELS = 10;

export type Level = [price: string, qty: string];

export interface DepthSnapshot {
  lastUpdateId: number;
  bids: Level[];
  asks: Level[];
  cs?: number;
}

export interface DepthDiff {
  e?: string;
  E?: number;
  s?: string;
  U: number;
  u: number;
  b: Level[];
  a: Level[];
  cs?: number;
}

export class BookOutOfSync extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BookOutOfSync";
  }
}

/** One side's levels: price text -> quantity text, with the sorted order cached until the next change. */
class Side {
  private levels = new Map<string, string>();
  private sorted: Level[] | null = null;
  constructor(private readonly descending: boolean) {}

  clear(): void {
    this.levels.clear();
    this.sorted = null;
  }
  set(price: string, qty: string): void {
    if (isZero(qty)) this.levels.delete(price);
    else this.levels.set(price, qty);
    this.sorted = null;
  }
  get size(): number {
    return this.levels.size;
  }
  top(n: number): Level[] {
    if (this.sorted === null) {
      const sign = this.descending ? -1 : 1;
      this.sorted = [...this.levels.entries()].sort((x, y) => sign * (Number(x[0]) - Number(y[0])));
    }
    return n >= this.sorted.length ? this.sorted : this.sorted.slice(0, n);
  }
}

export class LocalBook {
  updateId = 0;
  synced = false; // the first diff after the snapshot was applied
  private readonly bidSide = new Side(true);
  private readonly askSide = new Side(false);

  constructor(readonly symbol: string) {}

  load(snapshot: DepthSnapshot): void {
    this.updateId = Number(snapshot.lastUpdateId);
    this.bidSide.clear();
    this.askSide.clear();
    for (const [p, q] of snapshot.bids) this.bidSide.set(p, q);
    for (const [p, q] of snapshot.asks) this.askSide.set(p, q);
    this.synced = false;
  }

  /** Apply one diff; false if the book already holds it. Throws BookOutOfSync on a gap or a wrong checksum. */
  apply(event: DepthDiff): boolean {
    const first = Number(event.U);
    const last = Number(event.u);
    if (last <= this.updateId) return false;
    if (this.synced) {
      if (first !== this.updateId + 1) throw new BookOutOfSync(`${this.symbol}: update ${first} after ${this.updateId}`);
    } else if (!(first <= this.updateId + 1 && this.updateId + 1 <= last)) {
      throw new BookOutOfSync(`${this.symbol}: the first diff [${first}, ${last}] misses ${this.updateId + 1}`);
    }
    for (const [p, q] of event.b) this.bidSide.set(p, q);
    for (const [p, q] of event.a) this.askSide.set(p, q);
    this.updateId = last;
    this.synced = true;
    if (event.cs !== undefined && event.cs !== this.checksum()) {
      throw new BookOutOfSync(`${this.symbol}: checksum ${this.checksum()} after ${last}, the feed's ${event.cs}`);
    }
    return true;
  }

  bids(n: number): Level[] {
    return this.bidSide.top(n);
  }
  asks(n: number): Level[] {
    return this.askSide.top(n);
  }
  get depth(): { bids: number; asks: number } {
    return { bids: this.bidSide.size, asks: this.askSide.size };
  }

  /** CRC32 of "bidPrice:bidQty:askPrice:askQty:..." over the top 10 levels a side, interleaved best first. */
  checksum(): number {
    const bids = this.bids(CHECKSUM_LEVELS);
    const asks = this.asks(CHECKSUM_LEVELS);
    const parts: string[] = [];
    for (let i = 0; i < Math.max(bids.length, asks.length); i++) {
      const b = bids[i];
      const a = asks[i];
      if (b) parts.push(b[0], b[1]);
      if (a) parts.push(a[0], a[1]);
    }
    return crc32(parts.join(":"));
  }
}

export type FollowerState = "waiting" | "snapshot" | "live";

/**
 * Drives a LocalBook from a diff stream: the snapshot-and-buffer procedure, and a restart on BookOutOfSync.
 * Feed it every diff with push(); it fetches snapshots through `fetchSnapshot` and reports through callbacks.
 */
export class BookFollower {
  book: LocalBook;
  state: FollowerState = "waiting";
  resyncs = 0;
  private buffered: DepthDiff[] = [];
  private generation = 0;

  constructor(
    readonly symbol: string,
    private readonly fetchSnapshot: () => Promise<DepthSnapshot>,
    private readonly onUpdate: (book: LocalBook) => void,
    private readonly onResync: (reason: string) => void = () => {},
  ) {
    this.book = new LocalBook(symbol);
  }

  push(event: DepthDiff): void {
    if (this.state === "live") {
      try {
        if (this.book.apply(event)) this.onUpdate(this.book);
      } catch (err) {
        if (!(err instanceof BookOutOfSync)) throw err;
        this.restart(err.message);
      }
      return;
    }
    this.buffered.push(event);
    if (this.state === "waiting") {
      this.state = "snapshot";
      void this.loadSnapshot(this.generation);
    }
  }

  /**
   * The stream is open: fetch the snapshot now rather than at the first diff, so that a quiet market still shows
   * its book. Diffs that arrive meanwhile are buffered and checked as usual; a snapshot taken before the stream's
   * first diff is only accepted when nothing was buffered, and then the first diff must still span
   * lastUpdateId + 1 (LocalBook.apply), so a diff missed in between is caught as a gap.
   */
  start(): void {
    if (this.state !== "waiting") return;
    this.state = "snapshot";
    void this.loadSnapshot(this.generation);
  }

  /** Forget the book and start again from the next diff (a gap, a bad checksum, or a new connection). */
  restart(reason: string): void {
    this.resyncs += 1;
    this.generation += 1;
    this.book = new LocalBook(this.symbol);
    this.buffered = [];
    this.state = "waiting";
    this.onResync(reason);
  }

  private async loadSnapshot(generation: number): Promise<void> {
    let snapshot: DepthSnapshot;
    for (;;) {
      try {
        snapshot = await this.fetchSnapshot();
      } catch (err) {
        if (generation !== this.generation) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
        if (generation !== this.generation) return;
        continue;
      }
      if (generation !== this.generation) return; // restarted meanwhile
      const first = this.buffered[0];
      if (!first || snapshot.lastUpdateId >= first.U) break;
    }
    const book = new LocalBook(this.symbol);
    book.load(snapshot);
    try {
      for (const event of this.buffered) book.apply(event);
    } catch (err) {
      if (!(err instanceof BookOutOfSync)) throw err;
      this.restart(err.message);
      return;
    }
    this.book = book;
    this.buffered = [];
    this.state = "live";
    this.onUpdate(book);
  }
}
