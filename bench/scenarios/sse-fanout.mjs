// sse-fanout: the fanout load (1,000 readers of one version in 2 child processes, one writer
// at 100 properties/s for 10 s) read twice from stream-db in one run: as SSE
// (?format=sse: records, one event each) and as raw XML. Latency of a property = when the
// LAST reader had it minus the writer's send time (the marker is in the value, so in the
// SSE record's data line too).
// Rounds alternate SSE and raw; the target compares the mean p99 of each.
// Success: SSE p99 <= 1.2x the raw readers' p99 of the same run.
// Knobs: BENCH_READERS (1000), BENCH_RATE (100/s), BENCH_DURATION (s, 10), BENCH_READER_PROCS (2),
// BENCH_SSE_ROUNDS (2).
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio } from "../lib/stats.mjs";
import { streamDbTarget } from "../lib/targets.mjs";
import { fanoutSettings, LATENCY_COLUMNS, latencyRow } from "./fanout.mjs";

export const name = "sse-fanout";

export async function run() {
  const o = fanoutSettings();
  const rounds = knob("BENCH_SSE_ROUNDS", 2);
  const report = new Report(name, "SSE readers' p99 delivery latency <= 1.2x raw readers' p99");
  const runs = [];
  // Alternating rounds: one round's p99 is its 10th-worst sample, and it moves with the machine.
  for (let i = 0; i < rounds; i++) {
    const sse = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => {
      const target = streamDbTarget(s, "sse");
      return runFanout({ ...target, readUrl: `${target.readUrl}?format=sse` }, o);
    });
    const raw = await withServer(report, startStreamDb({ fsync: "batch" }), (s) =>
      runFanout(streamDbTarget(s, "raw"), o),
    );
    runs.push({ sse, raw });
  }
  report.table(["round", ...LATENCY_COLUMNS.map((c) => (c === "p99 vs ref" ? "p99 vs raw" : c))]);
  for (const [i, { sse, raw }] of runs.entries()) {
    report.row([String(i + 1), ...latencyRow("stream-db, SSE readers", sse, raw)]);
    report.row([String(i + 1), ...latencyRow("stream-db, raw XML readers", raw)]);
    for (const p of [fanoutProblems("SSE", sse), fanoutProblems("raw", raw)]) if (p) report.note(p);
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sseP99 = mean(runs.map((r) => r.sse.latency.p99));
  const rawP99 = mean(runs.map((r) => r.raw.latency.p99));
  const complete = runs.every((r) => r.sse.complete && r.raw.complete);
  report.target(
    `SSE p99 <= 1.2x raw p99 (means over ${rounds} rounds)`,
    fmtRatio(sseP99 / rawP99),
    complete && sseP99 <= 1.2 * rawP99,
  );
  report.note(
    `${o.readers} readers in ${o.procs} processes, ${o.rate} properties/s for ${o.durationMs / 1000} s; ` +
      `mean p99: SSE ${fmt(sseP99, 2)} ms, raw ${fmt(rawP99, 2)} ms`,
  );
  report.raw = { settings: { ...o, rounds }, runs };
  return report;
}
