// hot-version: the small-append load (autocannon, 50 connections, 10 s, one ~60-byte property
// per POST) with every connection on ONE version, stream-db --fsync batch, against the
// node:http POST reference with the same load.
// Success: stream-db req/s >= 40% of the POST reference's req/s.
// Knobs: BENCH_DURATION (s, 10), BENCH_CONNECTIONS (50), BENCH_WARMUP (s, 1).
import { measureAppends, streamDbPaths } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmtRatio } from "../lib/stats.mjs";
import { APPEND_COLUMNS, appendRow } from "./small-appends.mjs";

export const name = "hot-version";

export async function run() {
  const durationS = knob("BENCH_DURATION", 10);
  const connections = knob("BENCH_CONNECTIONS", 50);
  const warmupS = knob("BENCH_WARMUP", 1);
  const report = new Report(name, "stream-db --fsync batch req/s on one version >= 40% of node:http POST reference");
  const load = { connections, durationS, warmupS, paths: streamDbPaths(1, "hot") };
  const ours = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => measureAppends(s, load));
  const ref = await withServer(report, startReference("post"), (s) => measureAppends(s, load));
  report.table(APPEND_COLUMNS);
  report.row(appendRow("stream-db --fsync batch, 1 version", ours, ref));
  report.row(appendRow("node:http POST reference", ref));
  const r = ours.rps / ref.rps;
  report.target("req/s >= 0.40x POST reference", fmtRatio(r), r >= 0.4);
  report.note(`${connections} connections on one version, ${durationS} s`);
  report.raw = { settings: { connections, durationS }, ours, ref };
  return report;
}
