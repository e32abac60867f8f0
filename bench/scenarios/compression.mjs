// compression: large binary values stored compressed. Two servers (--fsync batch
// --index false), one with the default --compression gzip and one with --compression
// none, each sent BENCH_COMP_COUNT POSTs of one 4 MiB value, one at a time, of two kinds:
// JSON-like text (records with varied fields: gzip makes them about 4x smaller) and
// random bytes (incompressible: the 10 % rule must skip them cheaply).
// Figures: ingest MB/s (request body bytes / time), against compression off and, for the
// text, against zlib.gzipSync of the same values on one thread (a request's values are
// compressed one after another: the limit of the work); and the stored size of the text
// values against `gzip -6` of the same bytes.
// Then BENCH_COMP_READERS live NDJSON readers of one version, a writer at 100 properties/s
// for 5 s, with and without Accept-Encoding: gzip: the last reader's latency.
// Success: stored size within 2 % of gzip -6; text ingest >= 0.7x the gzipSync limit;
// random ingest with compression >= 0.9x without; gzip readers' p99 <= plain p99 + 5 ms.
// Knobs: BENCH_COMP_COUNT (24), BENCH_COMP_MB (4), BENCH_COMP_READERS (200).
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Pool } from "undici";
import { XML } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { fanoutProblems, runFanout } from "../lib/fanout.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, MiB, mib } from "../lib/stats.mjs";
import { streamDbTarget } from "../lib/targets.mjs";
import { LATENCY_COLUMNS, latencyRow } from "./fanout.mjs";

export const name = "compression";

/** JSON-like records: repeated keys, varied values, as an ingest job's documents are. */
function jsonLike(bytes, seed) {
  const words = ["alpha", "beta", "gamma", "delta", "sensor", "reading", "ok", "warn", "node", "edge"];
  let s = "[";
  for (let i = 0; s.length < bytes; i++) {
    const x = (i * 2654435761 + seed) >>> 0;
    s += `{"id":${i},"device":"dev-${x % 997}","status":"${words[x % 10]}","value":${(x % 100000) / 100},"tags":["${words[(x >> 3) % 10]}","${words[(x >> 7) % 10]}"],"ts":"2026-12-02T${String(x % 24).padStart(2, "0")}:${String(x % 60).padStart(2, "0")}:00Z"},`;
  }
  return Buffer.from(s.slice(0, bytes));
}

const body = (value) => Buffer.from(`<property for="v"><binary>${value.toString("base64")}</binary></property>`);

async function postAll(server, path, bodies) {
  const pool = new Pool(server.url, { connections: 1 });
  const meter = new ProcMeter(server.pid).start();
  const t0 = performance.now();
  let bytes = 0;
  for (const b of bodies) {
    const res = await pool.request({ path, method: "POST", headers: XML, body: b });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`POST ${path} answered ${res.statusCode}: ${text.slice(0, 200)}`);
    bytes += b.length;
  }
  const ms = performance.now() - t0;
  const usage = meter.stop();
  await pool.destroy();
  return { mbps: bytes / 1e6 / (ms / 1000), ms, cpuMs: usage.cpuMs, peakRss: usage.peakRss };
}

/** The compressed bytes each stored line holds (its base64, decoded length). */
function storedBytes(dataDir, key) {
  const lines = readFileSync(join(dataDir, `${key}.data`), "latin1").split("\n");
  let total = 0;
  for (const l of lines) {
    const m = /<binary[^>]*>([A-Za-z0-9+/=]*)<\/binary>/.exec(l);
    if (m) total += Buffer.from(m[1], "base64").length;
  }
  return total;
}

export async function run() {
  const count = knob("BENCH_COMP_COUNT", 24);
  const size = knob("BENCH_COMP_MB", 4) * MiB;
  const report = new Report(
    name,
    "stored size within 2 % of gzip -6; text ingest >= 0.7x zlib.gzipSync; random ingest >= 0.9x compression off",
  );
  const texts = Array.from({ length: count }, (_, i) => jsonLike(size, i));
  const randoms = Array.from({ length: count }, () => randomBytes(size));
  const textBodies = texts.map(body);
  const randomBodies = randoms.map(body);

  const t0 = performance.now();
  let gz = 0;
  for (const t of texts) gz += gzipSync(t, { level: 6 }).length;
  const limitMs = performance.now() - t0;
  const textBytes = textBodies.reduce((a, b) => a + b.length, 0);
  const limit = { mbps: textBytes / 1e6 / (limitMs / 1000), ms: limitMs };

  const args = ["--index", "false"];
  const results = await withServer(report, startStreamDb({ fsync: "batch", args }), (on) =>
    withServer(report, startStreamDb({ fsync: "batch", args: [...args, "--compression", "none"] }), async (off) => {
      const r = {};
      r.textOff = await postAll(off, "/write-item-stream/text/1", textBodies);
      r.textOn = await postAll(on, "/write-item-stream/text/1", textBodies);
      r.randomOn = await postAll(on, "/write-item-stream/random/1", randomBodies);
      r.randomOff = await postAll(off, "/write-item-stream/random/1", randomBodies);
      r.stored = storedBytes(on.dataDir, "text_1");
      r.randomStored = storedBytes(on.dataDir, "random_1");
      return r;
    }),
  );
  report.table(["vs", "load", "MB/s", "seconds", "CPU s", "peak RSS MiB"]);
  const row = (vs, label, m) => [
    vs,
    label,
    fmt(m.mbps, 1),
    fmt(m.ms / 1000, 2),
    m.cpuMs === undefined ? "-" : fmt(m.cpuMs / 1000, 2),
    m.peakRss === undefined ? "-" : mib(m.peakRss),
  ];
  report.row(
    row(fmtRatio(results.textOn.mbps / limit.mbps), "text values, gzip (vs the gzipSync limit)", results.textOn),
  );
  report.row(row("1.00x (limit)", "zlib.gzipSync of the same values, one thread", limit));
  report.row(row(fmtRatio(results.textOn.mbps / results.textOff.mbps), "text values, gzip (vs none)", results.textOn));
  report.row(row("1.00x (ref)", "text values, --compression none", results.textOff));
  report.row(row(fmtRatio(results.randomOn.mbps / results.randomOff.mbps), "random values, gzip", results.randomOn));
  report.row(row("1.00x (ref)", "random values, --compression none", results.randomOff));
  const sizeRatio = results.stored / gz;
  report.target(
    "stored size within 2 % of gzip -6",
    `${fmtRatio(sizeRatio)} (${mib(results.stored)} vs ${mib(gz)} MiB)`,
    Math.abs(sizeRatio - 1) <= 0.02,
  );
  const tr = results.textOn.mbps / limit.mbps;
  report.target("text ingest >= 0.7x the gzipSync limit", fmtRatio(tr), tr >= 0.7);
  const rr = results.randomOn.mbps / results.randomOff.mbps;
  report.target("random ingest with compression >= 0.9x without", fmtRatio(rr), rr >= 0.9);
  report.note(
    `random values stored ${results.randomStored === count * size ? "as they came" : "compressed (!)"}; text ${fmtRatio((size * count) / results.stored)} smaller`,
  );
  // Live NDJSON readers with and without Accept-Encoding: gzip, one writer at 100/s.
  const fan = { readers: knob("BENCH_COMP_READERS", 200), procs: 2, rate: 100, durationMs: 5000, batch: 100 };
  const live = {};
  for (const [label, headers] of [
    ["plain", {}],
    ["gzip", { "accept-encoding": "gzip" }],
  ]) {
    live[label] = await withServer(report, startStreamDb({ fsync: "batch", args }), (s) => {
      const t = streamDbTarget(s, `live-${label}`);
      return runFanout({ ...t, readUrl: `${t.readUrl}?format=ndjson`, readHeaders: headers }, fan);
    });
  }
  report.table(LATENCY_COLUMNS.map((c) => (c === "p99 vs ref" ? "p99 vs plain" : c)));
  report.row(latencyRow("NDJSON readers, Accept-Encoding: gzip", live.gzip, live.plain));
  report.row(latencyRow("NDJSON readers, no coding", live.plain));
  const extra = live.gzip.latency.p99 - live.plain.latency.p99;
  report.target(
    "gzip readers' p99 <= plain p99 + 5 ms",
    `${fmt(live.gzip.latency.p99, 2)} vs ${fmt(live.plain.latency.p99, 2)} ms`,
    live.gzip.complete && live.plain.complete && extra <= 5,
  );
  for (const p of [fanoutProblems("gzip", live.gzip), fanoutProblems("plain", live.plain)]) if (p) report.note(p);
  report.raw = { count, size, limit, gzipBytes: gz, ...results, live };
  return report;
}
