// fsync-modes: the small-append load (50 connections, one ~60-byte property per POST, 100
// versions) for 5 s each against stream-db with --fsync always, batch and never, side by
// side, and the node:http POST reference with the same load.
// Success (informational; the target is on batch): batch req/s >= 50% of the reference.
// Knobs: BENCH_FSYNC_DURATION (s, 5), BENCH_CONNECTIONS (50), BENCH_VERSIONS (100), BENCH_WARMUP (s, 1).
import { measureAppends, streamDbPaths } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmtRatio } from "../lib/stats.mjs";
import { APPEND_COLUMNS, appendRow } from "./small-appends.mjs";

export const name = "fsync-modes";

export async function run() {
  const durationS = knob("BENCH_FSYNC_DURATION", 5);
  const connections = knob("BENCH_CONNECTIONS", 50);
  const versions = knob("BENCH_VERSIONS", 100);
  const warmupS = knob("BENCH_WARMUP", 1);
  const report = new Report(name, "side by side; --fsync batch req/s >= 50% of the POST reference");
  const load = { connections, durationS, warmupS, paths: streamDbPaths(versions) };
  const modes = {};
  for (const fsync of ["always", "batch", "never"]) {
    modes[fsync] = await withServer(report, startStreamDb({ fsync }), (s) => measureAppends(s, load));
  }
  const ref = await withServer(report, startReference("post"), (s) => measureAppends(s, load));
  report.table(APPEND_COLUMNS);
  for (const [fsync, m] of Object.entries(modes)) report.row(appendRow(`stream-db --fsync ${fsync}`, m, ref));
  report.row(appendRow("node:http POST reference", ref));
  const r = modes.batch.rps / ref.rps;
  report.target("batch req/s >= 0.50x POST reference", fmtRatio(r), r >= 0.5);
  report.note(`${connections} connections, ${durationS} s each, ${versions} versions`);
  report.raw = { settings: { connections, durationS, versions }, modes, ref };
  return report;
}
