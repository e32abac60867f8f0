// wide-fanout: 10,000 readers on one version (spread over 4 child processes, each under a
// raised fd limit), writer at 10 properties/s for 10 s; same figures as fanout, plus server
// RSS per idle reader = (RSS with the readers connected and idle - RSS before) / readers.
// Then the same with SSE readers (?format=sse), and the same load on the pub/sub reference.
// Success: stream-db p99 <= 1.5x the reference's p99; <= 16 KiB RSS per idle reader; SSE
// readers within 10% of that.
// Knobs: BENCH_WIDE_READERS (10000), BENCH_WIDE_RATE (10/s), BENCH_DURATION (s, 10),
// BENCH_WIDE_PROCS (4).
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio } from "../lib/stats.mjs";
import { pubsubTarget, streamDbTarget } from "../lib/targets.mjs";
import { LATENCY_COLUMNS, latencyRow } from "./fanout.mjs";

export const name = "wide-fanout";

export async function run() {
  const o = {
    readers: knob("BENCH_WIDE_READERS", 10000),
    rate: knob("BENCH_WIDE_RATE", 10),
    durationMs: knob("BENCH_DURATION", 10) * 1000,
    procs: knob("BENCH_WIDE_PROCS", 4),
    batch: 200,
    settleMs: 2000,
    drainMs: 60_000,
  };
  const report = new Report(name, "stream-db p99 <= 1.5x pub/sub reference p99; <= 16 KiB server RSS per idle reader");
  const ours = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => runFanout(streamDbTarget(s), o));
  const sse = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => {
    const target = streamDbTarget(s);
    return runFanout({ ...target, readUrl: `${target.readUrl}?format=sse` }, o);
  });
  const ref = await withServer(report, startReference("pubsub"), (s) => runFanout(pubsubTarget(s), o));
  report.table([...LATENCY_COLUMNS, "KiB/idle reader", "connect s"]);
  const extra = (r) => [fmt(r.idleRssPerReader / 1024, 1), fmt(r.connected.ms / 1000, 1)];
  report.row([...latencyRow("stream-db --fsync batch", ours, ref), ...extra(ours)]);
  report.row([...latencyRow("stream-db, SSE readers", sse, ref), ...extra(sse)]);
  report.row([...latencyRow("pub/sub reference", ref), ...extra(ref)]);
  const r = ours.latency.p99 / ref.latency.p99;
  const complete = ours.complete;
  report.target("p99 <= 1.5x reference p99", fmtRatio(r), complete && r <= 1.5);
  const kib = ours.idleRssPerReader / 1024;
  report.target("<= 16 KiB RSS per idle reader", `${fmt(kib, 1)} KiB`, kib <= 16);
  const sseKib = sse.idleRssPerReader / 1024;
  report.target("SSE: no more RSS per idle reader than raw (+10%)", `${fmt(sseKib, 1)} KiB`, sseKib <= kib * 1.1);
  const fp = fanoutProblems("stream-db SSE", sse);
  if (fp) report.note(fp);
  for (const p of [fanoutProblems("stream-db", ours), fanoutProblems("reference", ref)]) if (p) report.note(p);
  report.note(`${o.readers} readers in ${o.procs} processes, ${o.rate} properties/s for ${o.durationMs / 1000} s`);
  report.raw = { settings: o, ours, sse, ref };
  return report;
}
