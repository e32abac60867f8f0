// peer: @durable-streams/server (the Node reference server of the Durable Streams protocol),
// run twice: in memory, and file-backed with its dataDir (log files + LMDB). Driven with the
// same small-append load as small-appends (autocannon, 50 connections, 10 s, ~60-byte body
// per POST over 100 streams, created first with PUT) and the same fan-out load as fanout
// (1,000 SSE readers, one writer at 100 appends/s for 10 s; readers look for the same
// `~SEQ~SENT_MS~` marker in the `data:` lines). stream-db's figures are those measured by
// small-appends and fanout earlier in the same run, or measured here if they were not run.
// Success (stream-db --fsync batch): req/s >= 10x file-backed and >= 1.5x in-memory; p99
// delivery latency <= 1/2 of the peer's (each mode).
// Knobs: BENCH_PEER_DURATION (s, 10) plus those of small-appends and fanout.
import { measureAppends, streamDbPaths } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { call } from "../lib/http.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startDurable, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio } from "../lib/stats.mjs";
import { durableTarget, streamDbTarget } from "../lib/targets.mjs";
import { fanoutSettings, LATENCY_COLUMNS, latencyRow } from "./fanout.mjs";
import { APPEND_COLUMNS, appendRow } from "./small-appends.mjs";

export const name = "peer";

async function durableAppends(server, load, versions) {
  const paths = Array.from({ length: versions }, (_, i) => `/streams/bench-${i}`);
  for (const p of paths) {
    const r = await call(server.url + p, { method: "PUT", headers: { "content-type": "text/plain" } });
    if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${p}: ${r.status} ${r.body}`);
  }
  return measureAppends(server, { ...load, paths, headers: { "content-type": "text/plain" } });
}

export async function run(ctx) {
  const durationS = knob("BENCH_PEER_DURATION", 10);
  const connections = knob("BENCH_CONNECTIONS", 50);
  const versions = knob("BENCH_VERSIONS", 100);
  const warmupS = knob("BENCH_WARMUP", 1);
  const fo = { ...fanoutSettings(), durationMs: durationS * 1000, drainMs: 10_000 };
  const report = new Report(
    name,
    "stream-db --fsync batch: req/s >= 10x durable-streams file-backed and >= 1.5x in-memory; p99 delivery <= 1/2 of its",
  );
  const load = { connections, durationS, warmupS };
  const peers = {};
  for (const fileBacked of [false, true]) {
    const mode = fileBacked ? "file" : "memory";
    peers[mode] = {};
    peers[mode].appends = await withServer(report, startDurable({ fileBacked }), (s) =>
      durableAppends(s, load, versions),
    );
    peers[mode].fanout = await withServer(report, startDurable({ fileBacked }), (s) => runFanout(durableTarget(s), fo));
  }
  let oursAppends = ctx.results["small-appends"]?.raw?.ours;
  let oursFanout = ctx.results.fanout?.raw?.ours;
  const reused = Boolean(oursAppends && oursFanout);
  oursAppends ??= await withServer(report, startStreamDb({ fsync: "batch" }), (s) =>
    measureAppends(s, { ...load, paths: streamDbPaths(versions) }),
  );
  oursFanout ??= await withServer(report, startStreamDb({ fsync: "batch" }), (s) => runFanout(streamDbTarget(s), fo));

  report.table(
    ["ours vs this", ...APPEND_COLUMNS.slice(1)],
    "small appends (ratio = stream-db req/s / this row's req/s)",
  );
  const aRow = (label, m) => [fmtRatio(oursAppends.rps / m.rps), ...appendRow(label, m).slice(1)];
  report.row(aRow("stream-db --fsync batch", oursAppends));
  report.row(aRow("durable-streams in-memory", peers.memory.appends));
  report.row(aRow("durable-streams file-backed", peers.file.appends));

  report.table(
    ["ours vs this (p99)", ...LATENCY_COLUMNS.slice(1)],
    "fan-out (ratio = stream-db p99 / this row's p99; lower is better)",
  );
  const fRow = (label, r) => [fmtRatio(oursFanout.latency.p99 / r.latency.p99), ...latencyRow(label, r).slice(1)];
  report.row(fRow("stream-db --fsync batch", oursFanout));
  report.row(fRow("durable-streams in-memory (SSE)", peers.memory.fanout));
  report.row(fRow("durable-streams file-backed (SSE)", peers.file.fanout));

  const vsFile = oursAppends.rps / peers.file.appends.rps;
  const vsMem = oursAppends.rps / peers.memory.appends.rps;
  report.target("req/s >= 10x durable-streams file-backed", fmtRatio(vsFile), vsFile >= 10);
  report.target("req/s >= 1.5x durable-streams in-memory", fmtRatio(vsMem), vsMem >= 1.5);
  for (const mode of ["memory", "file"]) {
    const r = oursFanout.latency.p99 / peers[mode].fanout.latency.p99;
    report.target(`p99 delivery <= 0.5x durable-streams ${mode}`, fmtRatio(r), r <= 0.5);
    const p = fanoutProblems(`durable-streams ${mode}`, peers[mode].fanout);
    if (p) report.note(p);
    const pa = peers[mode].appends;
    if (pa.non2xx + pa.errors)
      report.note(`durable-streams ${mode}: ${pa.non2xx} non-2xx, ${pa.errors} errors in appends`);
  }
  report.note(
    `${reused ? "stream-db rows are from small-appends and fanout in this run" : "stream-db rows measured here"}; ` +
      `appends: ${connections} connections, ${durationS} s, ${versions} streams; ` +
      `fan-out: ${fo.readers} readers, ${fo.rate}/s for ${fmt(fo.durationMs / 1000, 0)} s`,
  );
  report.raw = { settings: { ...load, versions, fanout: fo }, reused, oursAppends, oursFanout, peers };
  return report;
}
