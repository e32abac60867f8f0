// typed-catch-up: one reader of a sealed 1 GiB version of ~100-byte properties (built first
// with chunked POSTs, then sealed) as NDJSON, counting lines; against a bare loop that reads
// the same data file and writes the same records with JSON.stringify, with no HTTP
// (reference/ndjson-loop.mjs: the limit of the work). Figures: properties/s and MB/s of
// records.
// Success: stream-db properties/s >= 0.5x the bare loop's, and >= 1,000,000.
// Knobs: BENCH_TYPED_MB (MiB, 1024), BENCH_CATCHUP_POST_KB (KiB per building POST, 768).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { removeDir } from "../lib/cleanup.mjs";
import { knob } from "../lib/env.mjs";
import { buildSealedVersion } from "../lib/http.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { startReaders } from "../lib/readers.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { BENCH_DIR, startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, mib } from "../lib/stats.mjs";

export const name = "typed-catch-up";

const run_ = promisify(execFile);

async function readNdjson(server, url) {
  const meter = new ProcMeter(server.pid).start();
  const group = await startReaders({ url, count: 1, procs: 1, mode: "count", batch: 1 });
  try {
    await group.waitDone(600_000);
    const usage = meter.stop();
    const rep = await group.collect();
    const r = rep.perReader[0];
    const s = (r.lastAt - r.startAt) / 1000;
    // Every line is a record but the last, {"sealed":true,...}.
    return { props: r.lines - 1, bytes: r.bytes, seconds: s, ended: rep.ended, ...usage };
  } finally {
    await group.close();
  }
}

export async function run() {
  const sizeMiB = knob("BENCH_TYPED_MB", 1024);
  const postKiB = knob("BENCH_CATCHUP_POST_KB", 768);
  const report = new Report(name, "NDJSON catch-up properties/s >= 0.5x a bare JSON.stringify loop, and >= 1M/s");
  const path = "/write-item-stream/typed/1";
  let dataDir;
  try {
    let built;
    const ours = await withServer(
      report,
      startStreamDb({ fsync: "batch" }),
      async (s) => {
        dataDir = s.dataDir;
        built = await buildSealedVersion(s, path, { sizeMiB, postKiB, lineBytes: 100 });
        return readNdjson(s, `${s.url}/read-item-stream/typed/1?format=ndjson`);
      },
      { keepDataDir: true },
    );
    const { stdout } = await run_(process.execPath, [
      join(BENCH_DIR, "reference", "ndjson-loop.mjs"),
      "--file",
      join(dataDir, "typed_1.data"),
    ]);
    const loop = JSON.parse(stdout);
    const oursRate = ours.props / ours.seconds;
    const loopRate = loop.props / (loop.ms / 1000);
    report.table([
      "properties/s vs loop",
      "reader",
      "properties",
      "properties/s",
      "record MB/s",
      "s",
      "server CPU s",
      "peak RSS MiB",
    ]);
    report.row([
      fmtRatio(oursRate / loopRate),
      "stream-db NDJSON over HTTP",
      ours.props.toLocaleString("en-US"),
      fmt(oursRate, 0),
      fmt(ours.bytes / 1e6 / ours.seconds, 0),
      fmt(ours.seconds, 2),
      fmt(ours.cpuMs / 1000, 2),
      mib(ours.peakRss),
    ]);
    report.row([
      "1.00x (ref)",
      "bare loop, JSON.stringify",
      loop.props.toLocaleString("en-US"),
      fmt(loopRate, 0),
      fmt(loop.bytes / 1e6 / (loop.ms / 1000), 0),
      fmt(loop.ms / 1000, 2),
      "",
      "",
    ]);
    const complete = ours.props === loop.props && ours.ended === 1;
    report.target(
      "properties/s >= 0.5x the bare loop",
      fmtRatio(oursRate / loopRate),
      complete && oursRate >= 0.5 * loopRate,
    );
    report.target(">= 1,000,000 properties/s", fmt(oursRate, 0), complete && oursRate >= 1e6);
    if (!complete) report.note(`the NDJSON read had ${ours.props} records, the file ${loop.props}`);
    report.note(
      `a sealed ${sizeMiB} MiB version of ${built.props.toLocaleString("en-US")} 100-byte properties, built in ${fmt(built.ms / 1000, 1)} s`,
    );
    report.raw = { settings: { sizeMiB, postKiB }, built, ours, loop };
    return report;
  } finally {
    if (dataDir) removeDir(dataDir);
  }
}
