// big-values: 50 POSTs, each one property holding a 4 MiB binary value (base64, ~5.6 MB
// body), into one version of stream-db --fsync batch, one request at a time by default;
// the same requests against the node:http POST reference.
// Success: >= 150 MB/s (request body bytes / total time).
// A POST without an answer within BENCH_STALL_S is abandoned, reported, and ends the run.
// Knobs: BENCH_BIG_COUNT (50), BENCH_BIG_MB (MiB of raw value, 4), BENCH_BIG_CONCURRENCY (1), BENCH_STALL_S (15).
import { randomBytes } from "node:crypto";
import { Pool } from "undici";
import { XML } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, MiB, mib, summarize } from "../lib/stats.mjs";

export const name = "big-values";

async function postAll(server, { body, count, concurrency, stallMs }) {
  const pool = new Pool(server.url, { connections: concurrency });
  const statuses = {};
  const times = [];
  let next = 0;
  let stalled = null;
  let firstError = null;
  const meter = new ProcMeter(server.pid).start();
  const t0 = performance.now();
  const loop = async () => {
    while (next < count && !stalled) {
      const n = next++;
      const t = performance.now();
      try {
        const signal = AbortSignal.timeout(stallMs);
        const res = await pool.request({
          path: "/write-item-stream/big/1",
          method: "POST",
          headers: XML,
          body,
          signal,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) firstError ??= `${res.statusCode} ${text.slice(0, 300)}`;
        times.push(performance.now() - t);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      } catch (err) {
        stalled ??= { post: n, error: `${err.name}: ${err.message}` };
        statuses[err.name] = (statuses[err.name] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const ms = performance.now() - t0;
  const usage = meter.stop();
  await pool.destroy();
  const bytes = body.length * (statuses[200] ?? 0); // only what was accepted counts
  const mbps = stalled ? Number.NaN : bytes / 1e6 / (ms / 1000);
  return { ms, bytes, mbps, statuses, stalled, firstError, perPost: summarize(times), ...usage };
}

export async function run() {
  const count = knob("BENCH_BIG_COUNT", 50);
  const sizeMiB = knob("BENCH_BIG_MB", 4);
  const concurrency = knob("BENCH_BIG_CONCURRENCY", 1);
  const stallMs = knob("BENCH_STALL_S", 15) * 1000;
  const report = new Report(name, ">= 150 MB/s of request body");
  const value = randomBytes(sizeMiB * MiB).toString("base64");
  const body = Buffer.from(`<property for="blob"><binary>${value}</binary></property>`);
  const load = { body, count, concurrency, stallMs };
  const ours = await withServer(report, startStreamDb({ fsync: "batch" }), (s) => postAll(s, load));
  const ref = await withServer(report, startReference("post"), (s) => postAll(s, load));
  report.table(["MB/s vs ref", "server", "MB/s", "p50 ms/POST", "max ms/POST", "statuses", "CPU s", "peak RSS MiB"]);
  const row = (ratioText, label, m) => [
    ratioText,
    label,
    fmt(m.mbps, 1),
    fmt(m.perPost.p50, 1),
    fmt(m.perPost.max, 1),
    JSON.stringify(m.statuses),
    fmt(m.cpuMs / 1000, 2),
    mib(m.peakRss),
  ];
  report.row(row(fmtRatio(ours.mbps / ref.mbps), "stream-db --fsync batch", ours));
  report.row(row("1.00x (ref)", "node:http POST reference", ref));
  const allOk = ours.statuses[200] === count;
  if (ours.firstError) report.note(`stream-db answered not 200: ${ours.firstError}`);
  if (ours.stalled) {
    report.note(
      `stream-db STALLED on POST #${ours.stalled.post + 1} of ${count}: no answer within ${stallMs / 1000} s ` +
        `(${ours.stalled.error}); ${ours.perPost.n} POSTs had completed. The rest were not sent.`,
    );
  }
  report.target(">= 150 MB/s", `${fmt(ours.mbps, 1)} MB/s`, allOk && ours.mbps >= 150);
  report.note(
    `${count} POSTs x ${sizeMiB} MiB raw (${mib(body.length, 2)} MiB base64 body), ${concurrency} at a time, one version`,
  );
  report.raw = { settings: { count, sizeMiB, concurrency, bodyBytes: body.length }, ours, ref };
  return report;
}
