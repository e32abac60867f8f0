// catch-up: 8 concurrent readers of one sealed 1 GiB version (built first with chunked POSTs
// of ~1 KiB properties, then sealed), each reading it whole; then the same 8 readers against
// the file-streaming reference (fs.createReadStream of the same data file). Readers run in
// 2 child processes and count bytes. Figures: MB/s per reader (p50, min) and in total.
// Success: stream-db total MB/s >= 50% of the reference's.
// Knobs: BENCH_CATCHUP_MB (MiB, 1024), BENCH_CATCHUP_READERS (8), BENCH_CATCHUP_POST_KB
// (KiB per building POST, 768: below 1 MiB, where a stall was seen in earlier server builds).
import { statSync } from "node:fs";
import { join } from "node:path";
import { removeDir } from "../lib/cleanup.mjs";
import { knob } from "../lib/env.mjs";
import { buildSealedVersion } from "../lib/http.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { startReaders } from "../lib/readers.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startReference, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, mib, summarize } from "../lib/stats.mjs";

export const name = "catch-up";

async function readAll(server, url, { readers, expectBytes }) {
  const meter = new ProcMeter(server.pid).start();
  const group = await startReaders({ url, count: readers, procs: Math.min(2, readers), mode: "count", batch: readers });
  try {
    await group.waitDone(300_000);
    const usage = meter.stop();
    const rep = await group.collect();
    const per = rep.perReader.map((r) => r.bytes / 1e6 / ((r.lastAt - r.startAt) / 1000));
    const start = Math.min(...rep.perReader.map((r) => r.startAt));
    return {
      total: rep.bytes / 1e6 / ((rep.lastByteAt - start) / 1000),
      perReader: summarize(per),
      minPerReader: Math.min(...per),
      complete: rep.perReader.filter((r) => r.bytes === expectBytes).length,
      ended: rep.ended,
      failed: rep.failed + rep.errored,
      ...usage,
    };
  } finally {
    await group.close();
  }
}

export async function run() {
  const sizeMiB = knob("BENCH_CATCHUP_MB", 1024);
  const readers = knob("BENCH_CATCHUP_READERS", 8);
  const postKiB = knob("BENCH_CATCHUP_POST_KB", 768);
  const report = new Report(name, "stream-db total MB/s >= 50% of the file-streaming reference");
  const path = "/write-item-stream/catchup/1";
  let file;
  let built;
  let dataDir;
  try {
    const ours = await withServer(
      report,
      startStreamDb({ fsync: "batch" }),
      async (s) => {
        dataDir = s.dataDir;
        built = await buildSealedVersion(s, path, { sizeMiB, postKiB, lineBytes: 1024 });
        file = join(s.dataDir, "catchup_1.data");
        const expectBytes = statSync(file).size;
        return { expectBytes, ...(await readAll(s, `${s.url}/read-item-stream/catchup/1`, { readers, expectBytes })) };
      },
      { keepDataDir: true },
    );
    const ref = await withServer(report, startReference("file", ["--file", file]), (s) =>
      readAll(s, `${s.url}/catchup_1.data`, { readers, expectBytes: ours.expectBytes }),
    );
    report.table([
      "total MB/s vs ref",
      "server",
      "total MB/s",
      "p50 MB/s per reader",
      "min MB/s per reader",
      "complete readers",
      "CPU s",
      "peak RSS MiB",
    ]);
    const row = (ratioText, label, m) => [
      ratioText,
      label,
      fmt(m.total, 0),
      fmt(m.perReader.p50, 0),
      fmt(m.minPerReader, 0),
      `${m.complete}/${readers}`,
      fmt(m.cpuMs / 1000, 2),
      mib(m.peakRss),
    ];
    const ratio = ours.total / ref.total;
    report.row(row(fmtRatio(ratio), "stream-db --fsync batch", ours));
    report.row(row("1.00x (ref)", "file-streaming reference", ref));
    report.target("total MB/s >= 0.50x reference", fmtRatio(ratio), ours.complete === readers && ratio >= 0.5);
    if (ours.complete !== readers) report.note(`only ${ours.complete} of ${readers} stream-db readers got every byte`);
    report.note(
      `${readers} readers of a sealed ${mib(ours.expectBytes, 0)} MiB version; built with ${built.posts} chunked POSTs ` +
        `of ${postKiB} KiB (2 at a time) in ${fmt(built.ms / 1000, 1)} s = ${fmt((ours.expectBytes / 1e6 / built.ms) * 1000, 1)} MB/s`,
    );
    report.raw = { settings: { sizeMiB, readers, postKiB }, built, ours, ref };
    return report;
  } finally {
    if (dataDir) removeDir(dataDir);
  }
}
