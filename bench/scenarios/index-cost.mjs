// index-cost: what the index costs the paths that do not query, and how fast a live query
// follows. In one run:
//  - the small-appends load (autocannon, one ~60-byte property per POST over 100 versions)
//    against stream-db with the index and with --index false, taking turns for
//    BENCH_ROUNDS rounds; the median round's ratio is judged;
//  - 1,000 followers of one live query (`EXISTS t`, select=t: each write is a `change`
//    carrying the marked value) and 1,000 raw readers of the same kind of version, one
//    writer at 100 properties/s, as in the fanout scenario: the last follower's latency.
// Success: req/s with the index >= 0.8x without; live-query p99 <= the raw readers' p99.
// Two writes that land in one index round are one `change` (the newest value): the older
// one's marker reaches no follower, and is counted as missing, not in the latency.
// Knobs: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_VERSIONS (100), BENCH_WARMUP, BENCH_ROUNDS
// (3); the fanout knobs.
import { measureAppends, streamDbPaths } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startStreamDb } from "../lib/servers.mjs";
import { fmtRatio } from "../lib/stats.mjs";
import { streamDbTarget } from "../lib/targets.mjs";
import { fanoutSettings, LATENCY_COLUMNS, latencyRow } from "./fanout.mjs";
import { APPEND_COLUMNS, appendRow } from "./small-appends.mjs";

export const name = "index-cost";

export async function run() {
  const report = new Report(name, "small appends with the index >= 0.8x without; live-query p99 <= raw readers' p99");
  const load = {
    connections: knob("BENCH_CONNECTIONS", 50),
    durationS: knob("BENCH_DURATION", 10),
    warmupS: knob("BENCH_WARMUP", 1),
    paths: streamDbPaths(knob("BENCH_VERSIONS", 100)),
  };
  const rounds = knob("BENCH_ROUNDS", 3);
  const results = await withServer(report, startStreamDb({ fsync: "batch" }), (on) =>
    withServer(report, startStreamDb({ fsync: "batch", args: ["--index", "false"] }), async (off) => {
      const all = [];
      for (let i = 0; i < rounds; i++) {
        const first = i % 2 === 0 ? on : off;
        const a = await measureAppends(first, load);
        const b = await measureAppends(first === on ? off : on, load);
        all.push(first === on ? { on: a, off: b } : { on: b, off: a });
      }
      return all;
    }),
  );
  const sorted = [...results].sort((x, y) => x.on.rps / x.off.rps - y.on.rps / y.off.rps);
  const mid = sorted[Math.floor((sorted.length - 1) / 2)];
  report.table(APPEND_COLUMNS.map((c) => (c === "req/s vs ref" ? "req/s vs no index" : c)));
  report.row(appendRow("stream-db, index on", mid.on, mid.off));
  report.row(appendRow("stream-db, --index false", mid.off));
  const r = mid.on.rps / mid.off.rps;
  report.target("small appends: index on >= 0.8x off", fmtRatio(r), r >= 0.8);
  report.note(
    `${rounds} rounds, the median shown; per round: ${results.map((x) => fmtRatio(x.on.rps / x.off.rps)).join(", ")}`,
  );

  const o = fanoutSettings();
  const live = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => {
    const target = streamDbTarget(s, "live");
    const where = encodeURIComponent("EXISTS t");
    // A live query never ends: the drain waits a moment, not for the stream's end.
    return runFanout(
      { ...target, readUrl: `${s.url}/query?where=${where}&select=t&follow=true&format=ndjson` },
      { ...o, drainMs: 3000 },
    );
  });
  const raw = await withServer(report, startStreamDb({ fsync: "batch" }), (s) =>
    runFanout(streamDbTarget(s, "raw"), o),
  );
  report.table(LATENCY_COLUMNS.map((c) => (c === "p99 vs ref" ? "p99 vs raw" : c)));
  report.row(latencyRow("live query followers", live, raw));
  report.row(latencyRow("raw readers", raw));
  const lr = live.latency.p99 / raw.latency.p99;
  report.target("live-query p99 <= raw readers' p99", fmtRatio(lr), live.complete && raw.complete && lr <= 1);
  for (const p of [fanoutProblems("live", live), fanoutProblems("raw", raw)]) if (p) report.note(p);
  report.raw = { load, rounds: results, live, raw };
  return report;
}
