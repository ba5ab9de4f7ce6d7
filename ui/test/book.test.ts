import { describe, expect, it } from "vitest";
import { BookFollower, BookOutOfSync, LocalBook, type DepthDiff, type DepthSnapshot } from "../src/lib/book";
import { crc32 } from "../src/lib/crc32";

const snapshot: DepthSnapshot = {
  lastUpdateId: 10,
  bids: [
    ["50000.00", "0.10000"],
    ["49999.00", "0.50000"],
  ],
  asks: [
    ["50001.00", "0.20000"],
    ["50002.00", "1.00000"],
  ],
};

function diff(U: number, u: number, b: [string, string][], a: [string, string][], withCs?: LocalBook): DepthDiff {
  return { U, u, b, a, ...(withCs ? { cs: withCs.checksum() } : {}) };
}

describe("crc32", () => {
  it("is zlib's (values from Python's zlib.crc32)", () => {
    expect(crc32("50000.00:0.10000:50001.00:0.20000")).toBe(907342010);
    expect(crc32("")).toBe(0);
  });
});

describe("LocalBook", () => {
  it("computes the checksum over the top levels interleaved best first", () => {
    const book = new LocalBook("BTCUSDT");
    book.load(snapshot);
    const text = "50000.00:0.10000:50001.00:0.20000:49999.00:0.50000:50002.00:1.00000";
    expect(book.checksum()).toBe(crc32(text));
  });

  it("applies diffs in order: a new total replaces, zero removes, sides sort best first", () => {
    const book = new LocalBook("BTCUSDT");
    book.load(snapshot);
    expect(book.apply(diff(8, 10, [["1.00", "1"]], []))).toBe(false); // already in the snapshot
    book.apply(diff(9, 12, [["50000.00", "0"], ["50000.50", "0.30000"]], [["50002.00", "0.70000"]]));
    book.apply(diff(13, 13, [], [["50001.00", "0"], ["50003.00", "2.00000"]]));
    expect(book.updateId).toBe(13);
    expect(book.bids(10)).toEqual([["50000.50", "0.30000"], ["49999.00", "0.50000"]]);
    expect(book.asks(10)).toEqual([["50002.00", "0.70000"], ["50003.00", "2.00000"]]);
  });

  it("refuses a first diff that does not span lastUpdateId + 1, and a later gap", () => {
    const book = new LocalBook("BTCUSDT");
    book.load(snapshot);
    expect(() => book.apply(diff(12, 14, [], []))).toThrow(BookOutOfSync);
    book.load(snapshot);
    book.apply(diff(11, 11, [], []));
    expect(() => book.apply(diff(13, 13, [], []))).toThrow(/update 13 after 11/);
  });

  it("refuses a diff whose checksum differs from the book it leaves", () => {
    const book = new LocalBook("BTCUSDT");
    book.load(snapshot);
    const expected = new LocalBook("BTCUSDT");
    expected.load(snapshot);
    expected.apply(diff(11, 11, [["49999.00", "0.40000"]], []));
    book.load(snapshot);
    expect(book.apply(diff(11, 11, [["49999.00", "0.40000"]], [], expected))).toBe(true);
    book.load(snapshot);
    expect(() => book.apply({ ...diff(11, 11, [["49999.00", "0.40000"]], []), cs: 12345 })).toThrow(/checksum/);
  });
});

describe("BookFollower", () => {
  function setup(snapshots: DepthSnapshot[]) {
    const fetched: number[] = [];
    const updates: number[] = [];
    const resyncs: string[] = [];
    let pending: ((s: DepthSnapshot) => void)[] = [];
    const f = new BookFollower(
      "BTCUSDT",
      () =>
        new Promise<DepthSnapshot>((resolve) => {
          fetched.push(fetched.length);
          pending.push(resolve);
        }),
      (book) => updates.push(book.updateId),
      (reason) => resyncs.push(reason),
    );
    const answer = async () => {
      const s = snapshots.shift();
      const r = pending.shift();
      if (!s || !r) throw new Error("no snapshot asked for");
      r(s);
      for (let i = 0; i < 5; i++) await Promise.resolve();
      pending = pending.slice();
    };
    return { f, fetched, updates, resyncs, answer };
  }

  it("buffers diffs until the snapshot, drops what it holds, then goes live", async () => {
    const { f, updates, answer } = setup([snapshot]);
    f.push(diff(9, 10, [], []));
    f.push(diff(11, 12, [["49998.00", "1.00000"]], []));
    expect(f.state).toBe("snapshot");
    await answer();
    expect(f.state).toBe("live");
    expect(f.book.updateId).toBe(12);
    f.push(diff(13, 13, [], [["50001.00", "0"]]));
    expect(updates).toEqual([12, 13]);
    expect(f.book.asks(1)).toEqual([["50002.00", "1.00000"]]);
  });

  it("fetches again when the snapshot is older than the first buffered diff", async () => {
    const { f, fetched, answer } = setup([{ ...snapshot, lastUpdateId: 5 }, snapshot]);
    f.push(diff(9, 10, [], []));
    await answer();
    expect(f.state).toBe("snapshot");
    f.push(diff(11, 11, [], []));
    await answer();
    expect(fetched.length).toBe(2);
    expect(f.state).toBe("live");
    expect(f.book.updateId).toBe(11);
  });

  it("starts again on a gap and on a checksum mismatch", async () => {
    const { f, resyncs, answer, fetched } = setup([snapshot, { ...snapshot, lastUpdateId: 20 }]);
    f.push(diff(10, 11, [], []));
    await answer();
    expect(f.state).toBe("live");
    f.push(diff(13, 13, [], [])); // 12 is missing
    expect(f.state).toBe("waiting");
    expect(resyncs).toHaveLength(1);
    f.push(diff(20, 21, [], []));
    await answer();
    expect(fetched.length).toBe(2);
    expect(f.state).toBe("live");
    expect(f.book.updateId).toBe(21);
    f.push({ ...diff(22, 22, [], []), cs: 1 });
    expect(f.state).toBe("waiting");
    expect(resyncs[1]).toMatch(/checksum/);
    expect(f.resyncs).toBe(2);
  });
});

describe("BookFollower on a quiet market", () => {
  it("shows the snapshot before any diff, then checks the first diff against it", async () => {
    let resolve: (s: DepthSnapshot) => void = () => {};
    const updates: number[] = [];
    const f = new BookFollower("BTCUSDT", () => new Promise<DepthSnapshot>((r) => (resolve = r)), (b) => updates.push(b.updateId));
    f.start();
    expect(f.state).toBe("snapshot");
    resolve(snapshot);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(f.state).toBe("live");
    expect(updates).toEqual([10]);
    f.push(diff(9, 10, [], [])); // older than the snapshot: ignored
    f.push(diff(11, 11, [["49998.00", "1.00000"]], []));
    expect(f.book.updateId).toBe(11);
    f.push(diff(13, 13, [], [])); // a gap
    expect(f.state).toBe("waiting");
  });

  it("catches a diff missed between the snapshot and the stream's first one", async () => {
    let resolve: (s: DepthSnapshot) => void = () => {};
    const resyncs: string[] = [];
    const f = new BookFollower("BTCUSDT", () => new Promise<DepthSnapshot>((r) => (resolve = r)), () => {}, (why) => resyncs.push(why));
    f.start();
    resolve(snapshot);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    f.push(diff(12, 12, [], [])); // 11 never arrived
    expect(resyncs[0]).toMatch(/misses 11/);
    expect(f.state).toBe("waiting");
  });
});
