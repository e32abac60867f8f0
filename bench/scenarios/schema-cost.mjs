// schema-cost: what a five-property schema costs the writes it checks. In one run, two
// servers (--fsync batch --index false: the index's own work would drown the difference),
// one with the schema registered and every version bound to it (?type=bench5 on each
// write), one without, taking turns for BENCH_ROUNDS rounds of each load:
//  - small appends (autocannon, one ~60-byte property per POST over 100 versions);
//  - streaming ingest: one chunked POST of BENCH_INGEST_MB MiB of ~100-byte properties.
// The schema: `name` (string, required, repeated, max_length 200), `p` (string, repeated,
// max_length 200, pattern ^v[0-9]), three more declared and unused, and no other property
// allowed: each property is looked up, typed, measured and (for `p`) matched.
// Success: each load with the schema >= 0.9x without (the median round's ratio).
// Knobs: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_VERSIONS (100), BENCH_WARMUP,
// BENCH_ROUNDS (5), BENCH_INGEST_MB (200).
import { measureAppends, streamDbPaths, XML } from "../lib/appends.mjs";
import { knob } from "../lib/env.mjs";
import { postStream, propertyBlocks, repeatBlocks } from "../lib/http.mjs";
import { ProcMeter } from "../lib/proc.mjs";
import { Report } from "../lib/report.mjs";
import { withServer } from "../lib/scenario.mjs";
import { startStreamDb } from "../lib/servers.mjs";
import { fmt, fmtRatio, MiB, mib } from "../lib/stats.mjs";
import { APPEND_COLUMNS, appendRow } from "./small-appends.mjs";

export const name = "schema-cost";

const SCHEMA = {
  properties: {
    name: { type: "string", required: true, repeated: true, max_length: 200 },
    p: { type: "string", repeated: true, max_length: 200, pattern: "^v[0-9]" },
    age: { type: "number", integer: true, min: 0, max: 150 },
    seen: { type: "datetime", min: "2000-01-01T00:00:00Z" },
    avatar: { type: "binary", max_bytes: 1048576 },
  },
  additional_properties: false,
};

async function registerSchema(server) {
  const res = await fetch(`${server.url}/schemas/bench5`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(SCHEMA),
  });
  if (res.status !== 201) throw new Error(`PUT /schemas/bench5 answered ${res.status}: ${await res.text()}`);
}

async function ingestOnce(server, path, gen, blocks) {
  const meter = new ProcMeter(server.pid).start();
  const res = await postStream(server.url + path, repeatBlocks(gen, blocks), XML, { stallMs: 30_000 });
  const usage = meter.stop();
  if (res.status !== 200) throw new Error(`ingest answered ${res.status}: ${res.body.slice(0, 300)}`);
  return { mbps: res.bytes / 1e6 / (res.ms / 1000), ms: res.ms, cpuMs: usage.cpuMs, peakRss: usage.peakRss };
}

const median = (xs, ratio) => [...xs].sort((a, b) => ratio(a) - ratio(b))[Math.floor((xs.length - 1) / 2)];

export async function run() {
  const report = new Report(name, "small appends and streaming ingest with a five-property schema >= 0.9x without");
  const versions = knob("BENCH_VERSIONS", 100);
  const load = {
    connections: knob("BENCH_CONNECTIONS", 50),
    durationS: knob("BENCH_DURATION", 10),
    warmupS: knob("BENCH_WARMUP", 1),
  };
  const rounds = knob("BENCH_ROUNDS", 5);
  const gen = propertyBlocks({ lineBytes: 100, blockBytes: 64 * 1024 });
  const blocks = Math.ceil((knob("BENCH_INGEST_MB", 200) * MiB) / gen.blockBytes);
  const typedPaths = streamDbPaths(versions, "typed").map((p) => `${p}?type=bench5`);
  const plainPaths = streamDbPaths(versions, "plain");
  const args = ["--index", "false"];
  const results = await withServer(report, startStreamDb({ fsync: "batch", args }), async (on) => {
    await registerSchema(on);
    return withServer(report, startStreamDb({ fsync: "batch", args }), async (off) => {
      const all = Array.from({ length: rounds }, () => ({ on: {}, off: {} }));
      const turns = (i) => (i % 2 === 0 ? ["on", "off"] : ["off", "on"]);
      for (let i = 0; i < rounds; i++) {
        for (const which of turns(i)) {
          const paths = which === "on" ? typedPaths : plainPaths;
          all[i][which].appends = await measureAppends(which === "on" ? on : off, { ...load, paths });
        }
      }
      for (let i = 0; i < rounds; i++) {
        for (const which of turns(i)) {
          const path = `/write-item-stream/ingest-${i}/1${which === "on" ? "?type=bench5" : ""}`;
          all[i][which].ingest = await ingestOnce(which === "on" ? on : off, path, gen, blocks);
        }
      }
      return all;
    });
  });
  const appendsMid = median(results, (x) => x.on.appends.rps / x.off.appends.rps);
  report.table(APPEND_COLUMNS.map((c) => (c === "req/s vs ref" ? "req/s vs no schema" : c)));
  report.row(appendRow("small appends, schema", appendsMid.on.appends, appendsMid.off.appends));
  report.row(appendRow("small appends, no schema", appendsMid.off.appends));
  const ar = appendsMid.on.appends.rps / appendsMid.off.appends.rps;
  report.target("small appends: schema >= 0.9x none", fmtRatio(ar), ar >= 0.9);

  const ingestMid = median(results, (x) => x.on.ingest.mbps / x.off.ingest.mbps);
  report.table(["MB/s vs no schema", "load", "MB/s", "seconds", "CPU s", "peak RSS MiB"]);
  const row = (ratio, label, m) => [
    ratio,
    label,
    fmt(m.mbps, 1),
    fmt(m.ms / 1000, 2),
    fmt(m.cpuMs / 1000, 2),
    mib(m.peakRss),
  ];
  const ir = ingestMid.on.ingest.mbps / ingestMid.off.ingest.mbps;
  report.row(row(fmtRatio(ir), "streaming ingest, schema", ingestMid.on.ingest));
  report.row(row("1.00x (ref)", "streaming ingest, no schema", ingestMid.off.ingest));
  report.target("streaming ingest: schema >= 0.9x none", fmtRatio(ir), ir >= 0.9);
  report.note(
    `${rounds} rounds, the median shown; per round, appends: ${results.map((x) => fmtRatio(x.on.appends.rps / x.off.appends.rps)).join(", ")}; ingest: ${results.map((x) => fmtRatio(x.on.ingest.mbps / x.off.ingest.mbps)).join(", ")}`,
  );
  report.raw = { load, rounds: results };
  return report;
}
