// fanout: 1,000 readers on one version (2 child processes, plain node:http, newline
// counting plus a `~SEQ~SENT_MS~` marker per line), one writer at 100 properties/s for 10 s.
// Latency of a property = the moment the LAST reader had it minus the writer's send time
// (embedded in the value). Same load on the pub/sub reference (every POST body written to
// every open GET). Reported: p50/p99/max of that latency, server CPU ms per 1,000
// deliveries, RSS.
// Success: stream-db p99 <= 1.5x the reference's p99, and <= 20 ms where possible.
// Knobs: BENCH_READERS (1000), BENCH_RATE (100/s), BENCH_DURATION (s, 10), BENCH_READER_PROCS (2).
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, mib } from "../lib/stats.mjs";
import { pubsubTarget, streamDbTarget } from "../lib/targets.mjs";

export const name = "fanout";

export const LATENCY_COLUMNS = [
  "p99 vs ref",
  "server",
  "p50 ms",
  "p99 ms",
  "max ms",
  "deliveries",
  "CPU ms/1k deliveries",
  "cores busy: server+readers",
  "RSS idle MiB",
  "peak RSS MiB",
];

export function latencyRow(label, r, ref) {
  return [
    ref ? fmtRatio(r.latency.p99 / ref.latency.p99) : "1.00x (ref)",
    label,
    fmt(r.latency.p50, 2),
    fmt(r.latency.p99, 2),
    fmt(r.latency.max, 2),
    `${r.deliveries.toLocaleString("en-US")}/${r.expected.toLocaleString("en-US")}`,
    fmt(r.cpuPerKDeliveries, 1),
    `${fmt(r.serverCores, 2)}+${fmt(r.readerCores, 2)}`,
    mib(r.rssIdle),
    mib(r.usage.peakRss),
  ];
}

export function fanoutSettings() {
  return {
    readers: knob("BENCH_READERS", 1000),
    rate: knob("BENCH_RATE", 100),
    durationMs: knob("BENCH_DURATION", 10) * 1000,
    procs: knob("BENCH_READER_PROCS", 2),
  };
}

export async function run() {
  const o = fanoutSettings();
  const report = new Report(name, "stream-db p99 delivery latency <= 1.5x pub/sub reference p99, and <= 20 ms");
  const ours = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => runFanout(streamDbTarget(s), o));
  const ref = await withServer(report, startReference("pubsub"), (s) => runFanout(pubsubTarget(s), o));
  report.table(LATENCY_COLUMNS);
  report.row(latencyRow("stream-db --fsync batch", ours, ref));
  report.row(latencyRow("pub/sub reference", ref));
  const r = ours.latency.p99 / ref.latency.p99;
  const complete = ours.complete;
  report.target("p99 <= 1.5x reference p99", fmtRatio(r), complete && r <= 1.5);
  report.target("p99 <= 20 ms", `${fmt(ours.latency.p99, 2)} ms`, complete && ours.latency.p99 <= 20);
  for (const p of [fanoutProblems("stream-db", ours), fanoutProblems("reference", ref)]) if (p) report.note(p);
  report.note(`${o.readers} readers in ${o.procs} processes, ${o.rate} properties/s for ${o.durationMs / 1000} s`);
  report.raw = { settings: o, ours, ref };
  return report;
}
