// small-appends: autocannon, 50 connections, 10 s, one ~60-byte property per POST, spread
// over 100 versions (items bench-0..bench-99, version 1), stream-db with --fsync batch,
// against the node:http POST reference (reads the body, answers 200) with the same load.
// Success: stream-db req/s >= 50% of the POST reference's req/s. Also reported: p50/p99
// latency, server CPU ms per 1,000 requests, peak RSS.
// Knobs: BENCH_DURATION (s, 10), BENCH_CONNECTIONS (50), BENCH_VERSIONS (100), BENCH_WARMUP (s, 1),
// BENCH_ROUNDS (3: both servers take the load in turns, the median round's ratio is judged).

import { measureAppends, streamDbPaths } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, mib } from "../lib/stats.mjs";

export const name = "small-appends";

export const APPEND_COLUMNS = [
  "req/s vs ref",
  "server",
  "req/s",
  "p50 ms",
  "p99 ms",
  "non-2xx+errors",
  "CPU ms/1k req",
  "peak RSS MiB",
];

export function appendRow(label, m, ref) {
  return [
    ref ? fmtRatio(m.rps / ref.rps) : "1.00x (ref)",
    label,
    fmt(m.rps, 0),
    fmt(m.p50, 1),
    fmt(m.p99, 1),
    m.non2xx + m.errors,
    fmt(m.cpuPerKReq, 0),
    mib(m.peakRss),
  ];
}

/**
 * stream-db (--fsync batch) against the POST reference under one autocannon load: the body
 * of small-appends and hot-version, which differ only in the paths and the target.
 */
export async function compareAppends({ scenario, summary, paths, label, threshold, note, settings }) {
  const durationS = knob("BENCH_DURATION", 10);
  const connections = knob("BENCH_CONNECTIONS", 50);
  const warmupS = knob("BENCH_WARMUP", 1);
  const report = new Report(scenario, summary);
  const rounds = knob("BENCH_ROUNDS", 3);
  const load = { connections, durationS, warmupS, paths };
  // Both servers stay up and take the load in turns (the order alternating), round after
  // round: on a shared machine one pair of runs minutes apart can differ by a third, so
  // the ratio judged is the median round's.
  const results = await withServer(report, startStreamDb({ fsync: "batch" }), (db) =>
    withServer(report, startReference("post"), async (reference) => {
      const all = [];
      for (let i = 0; i < rounds; i++) {
        const first = i % 2 === 0 ? db : reference;
        const a = await measureAppends(first, load);
        const b = await measureAppends(first === db ? reference : db, load);
        all.push(first === db ? { ours: a, ref: b } : { ours: b, ref: a });
      }
      return all;
    }),
  );
  const sorted = [...results].sort((x, y) => x.ours.rps / x.ref.rps - y.ours.rps / y.ref.rps);
  const { ours, ref } = sorted[Math.floor((sorted.length - 1) / 2)];
  report.table(APPEND_COLUMNS);
  report.row(appendRow(label, ours, ref));
  report.row(appendRow("node:http POST reference", ref));
  const r = ours.rps / ref.rps;
  report.target(`req/s >= ${threshold.toFixed(2)}x POST reference`, fmtRatio(r), r >= threshold);
  report.note(note(connections, durationS));
  report.note(
    `${rounds} rounds, the median shown; ratio per round: ${results.map((x) => fmtRatio(x.ours.rps / x.ref.rps)).join(", ")}`,
  );
  report.raw = { settings: { connections, durationS, rounds, ...settings }, ours, ref, rounds: results };
  return report;
}

export function run() {
  const versions = knob("BENCH_VERSIONS", 100);
  return compareAppends({
    scenario: name,
    summary: "stream-db --fsync batch req/s >= 50% of node:http POST reference",
    paths: streamDbPaths(versions),
    label: "stream-db --fsync batch",
    threshold: 0.5,
    note: (connections, durationS) =>
      `${connections} connections, ${durationS} s, ${versions} versions, ~60-byte property per POST`,
    settings: { versions },
  });
}
