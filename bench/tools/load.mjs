// One saturated small-append load, as the small-appends scenario gives it; prints req/s.
// node bench/tools/load.mjs URL [SECONDS] [VERSIONS]
import { cannon, SMALL_PROPERTY, streamDbPaths, XML } from "../lib/appends.mjs";

const url = process.argv[2];
const seconds = Number(process.argv[3] ?? 6);
const versions = Number(process.argv[4] ?? 100);
const r = await cannon({
  url,
  connections: 50,
  durationS: seconds,
  paths: streamDbPaths(versions),
  headers: XML,
  body: SMALL_PROPERTY,
});
console.log(
  `rps ${(r["2xx"] / r.duration).toFixed(0)} p50 ${r.latency.p50} p99 ${r.latency.p99} non2xx ${r.non2xx} errors ${r.errors}`,
);
