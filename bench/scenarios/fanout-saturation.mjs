// fanout-saturation: 1,000 readers on one version (2 child processes counting newlines), the
// writer as fast as it can: N concurrent POST loops (N = 1, 4, then 16), one ~100-byte property
// per POST, for 5 s; then the version is sealed and the readers drain. deliveries/s = properties delivered
// to readers (properties x readers) / time from the first write to the last byte read. Same
// load on the pub/sub reference (ended with POST /end instead of a seal).
// Success: stream-db deliveries/s >= 2x the reference's with 4 and 16 writers; with 1
// writer, which waits for each answer, its properties/s (answers/s) >= 0.9x the reference's.
// Knobs: BENCH_READERS (1000), BENCH_READER_PROCS (2), BENCH_SAT_DURATION (s, 5),
// BENCH_SAT_WRITERS (comma-separated loop counts, "1,4,16").
import { knob, knobsUsed } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, mib } from "../lib/stats.mjs";
import { pubsubTarget, streamDbTarget } from "../lib/targets.mjs";

export const name = "fanout-saturation";

export async function run() {
  const writers = (process.env.BENCH_SAT_WRITERS || "1,4,16")
    .split(",")
    .map(Number)
    .filter((n) => n > 0);
  knobsUsed.BENCH_SAT_WRITERS = writers.join(",");
  const base = {
    readers: knob("BENCH_READERS", 1000),
    procs: knob("BENCH_READER_PROCS", 2),
    durationMs: knob("BENCH_SAT_DURATION", 5) * 1000,
  };
  const report = new Report(name, "stream-db deliveries/s >= 2x pub/sub reference; 1 writer: answers/s >= 0.9x");
  const runs = [];
  for (const loops of writers) {
    const o = { ...base, saturate: { loops, durationMs: base.durationMs }, drainMs: 60_000 };
    const ours = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => runFanout(streamDbTarget(s), o));
    const ref = await withServer(report, startReference("pubsub"), (s) => runFanout(pubsubTarget(s), o));
    runs.push({ loops, ours, ref });
  }
  report.table([
    "deliveries/s vs ref",
    "server",
    "deliveries/s",
    "properties/s written",
    "deliveries",
    "drain s",
    "CPU ms/1k deliveries",
    "cores busy: server+readers",
    "peak RSS MiB",
  ]);
  const row = (ratioText, label, r) => [
    ratioText,
    label,
    fmt(r.deliveriesPerS, 0),
    fmt(r.propsPerS, 0),
    `${r.deliveries.toLocaleString("en-US")}/${r.expected.toLocaleString("en-US")}`,
    fmt((r.spanMs - r.writeSpanMs) / 1000, 2),
    fmt(r.cpuPerKDeliveries, 2),
    `${fmt(r.serverCores, 2)}+${fmt(r.readerCores, 2)}`,
    mib(r.usage.peakRss),
  ];
  for (const { loops, ours, ref } of runs) {
    const ratio = ours.deliveriesPerS / ref.deliveriesPerS;
    report.row(row(fmtRatio(ratio), `stream-db --fsync batch, ${loops} writers`, ours));
    report.row(row("1.00x (ref)", `pub/sub reference, ${loops} writers`, ref));
    const complete = ours.complete;
    if (loops === 1) {
      // One writer that waits for each answer: its rate is the acknowledgement rate.
      const acks = ours.propsPerS / ref.propsPerS;
      report.target("1 writer: answers/s >= 0.9x reference", fmtRatio(acks), complete && acks >= 0.9);
    } else {
      report.target(`deliveries/s >= 2x reference (${loops} writers)`, fmtRatio(ratio), complete && ratio >= 2);
    }
    for (const p of [
      fanoutProblems(`stream-db (${loops} writers)`, ours),
      fanoutProblems(`reference (${loops} writers)`, ref),
    ]) {
      if (p) report.note(p);
    }
  }
  report.note(
    `${base.readers} readers in ${base.procs} processes; N POST loops for ${base.durationMs / 1000} s; ` +
      '"drain s" is the time from the last write to the last byte read',
  );
  report.raw = { settings: { ...base, writers }, runs };
  return report;
}
