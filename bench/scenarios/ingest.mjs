// ingest: ONE chunked POST streaming 200 MiB of ~100-byte properties, generated on the fly
// (64 KiB blocks reused, never the whole body in memory), into stream-db --fsync batch;
// the same body into the node:http POST reference.
// Success: >= 60 MB/s committed (body bytes / time to the 200 answer), server peak RSS <= 200 MiB.
// A request on which the server stops reading for BENCH_STALL_S is abandoned and reported.
// Knobs: BENCH_INGEST_MB (MiB, 200), BENCH_STALL_S (15).
import { statSync } from "node:fs";
import { join } from "node:path";
import { XML } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { postStream, propertyBlocks, repeatBlocks, StallError } from "../lib/http.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, MiB, mib } from "../lib/stats.mjs";

export const name = "ingest";

async function ingestOnce(server, path, gen, blocks, stallMs) {
  const meter = new ProcMeter(server.pid).start();
  try {
    const res = await postStream(server.url + path, repeatBlocks(gen, blocks), XML, { stallMs });
    const usage = meter.stop();
    return { ...res, mbps: res.bytes / 1e6 / (res.ms / 1000), cpuMs: usage.cpuMs, peakRss: usage.peakRss };
  } catch (err) {
    const usage = meter.stop();
    if (!(err instanceof StallError)) throw err;
    return { stalled: err, status: "stalled", bytes: err.bytes, ms: Number.NaN, mbps: Number.NaN, body: "", ...usage };
  }
}

export async function run() {
  const sizeMiB = knob("BENCH_INGEST_MB", 200);
  const stallMs = knob("BENCH_STALL_S", 15) * 1000;
  const report = new Report(name, ">= 60 MB/s committed; server peak RSS <= 200 MiB");
  const gen = propertyBlocks({ lineBytes: 100, blockBytes: 64 * 1024 });
  const blocks = Math.ceil((sizeMiB * MiB) / gen.blockBytes);
  const lines = blocks * gen.linesPerBlock;
  const path = "/write-item-stream/ingest/1";
  const ours = await withServer(report, startStreamDb({ fsync: "batch" }), async (s) => {
    const r = await ingestOnce(s, path, gen, blocks, stallMs);
    let fileSize = 0;
    try {
      fileSize = statSync(join(s.dataDir, "ingest_1.data")).size;
    } catch {}
    if (r.stalled) {
      report.note(
        `stream-db STALLED: it stopped reading the request body after ${r.bytes.toLocaleString("en-US")} bytes ` +
          `had been sent (no progress for ${stallMs / 1000} s); the data file then held ${fileSize.toLocaleString("en-US")} ` +
          `bytes (${Math.max(0, (fileSize - 7) / 100)} properties). The request was abandoned.`,
      );
      return { ...r, committed: Math.max(0, (fileSize - 7) / 100), fileSize };
    }
    let committed = Number.NaN;
    try {
      committed = JSON.parse(r.body).committed;
    } catch {}
    if (r.status !== 200 || committed !== lines) {
      report.note(`stream-db answered ${r.status}, committed ${committed} of ${lines}: ${r.body.slice(0, 300)}`);
    }
    if (fileSize !== 7 + r.bytes) report.note(`data file is ${fileSize} bytes, expected ${7 + r.bytes}`);
    return { ...r, committed, fileSize };
  });
  const ref = await withServer(report, startReference("post"), (s) => ingestOnce(s, path, gen, blocks, stallMs));
  report.table(["MB/s vs ref", "server", "MB/s", "seconds", "status", "CPU s", "peak RSS MiB"]);
  const row = (ratioText, label, m) => [
    ratioText,
    label,
    fmt(m.mbps, 1),
    fmt(m.ms / 1000, 2),
    m.status,
    fmt(m.cpuMs / 1000, 2),
    mib(m.peakRss),
  ];
  report.row(row(fmtRatio(ours.mbps / ref.mbps), "stream-db --fsync batch", ours));
  report.row(row("1.00x (ref)", "node:http POST reference", ref));
  report.target(">= 60 MB/s committed", `${fmt(ours.mbps, 1)} MB/s`, ours.status === 200 && ours.mbps >= 60);
  const rssText = `${mib(ours.peakRss)} MiB${ours.stalled ? " (request stalled: not a full run)" : ""}`;
  report.target("server peak RSS <= 200 MiB", rssText, !ours.stalled && ours.peakRss <= 200 * MiB);
  report.note(
    `${fmt((blocks * gen.blockBytes) / MiB, 0)} MiB body, ${lines.toLocaleString("en-US")} properties of 100 bytes, one request`,
  );
  report.raw = {
    settings: { sizeMiB, lines },
    ours: { ...ours, stalled: undefined, body: ours.body.slice(0, 300) },
    ref,
  };
  return report;
}
