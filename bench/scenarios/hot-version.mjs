// hot-version: the small-append load (autocannon, 50 connections, 10 s, one ~60-byte property
// per POST) with every connection on ONE version, stream-db --fsync batch, against the
// node:http POST reference with the same load.
// Success: stream-db req/s >= 40% of the POST reference's req/s.
// Knobs: BENCH_DURATION (s, 10), BENCH_CONNECTIONS (50), BENCH_WARMUP (s, 1), BENCH_ROUNDS (3).
import { streamDbPaths } from "../lib/appends.mjs";
import { compareAppends } from "./small-appends.mjs";

export const name = "hot-version";

export function run() {
  return compareAppends({
    scenario: name,
    summary: "stream-db --fsync batch req/s on one version >= 40% of node:http POST reference",
    paths: streamDbPaths(1, "hot"),
    label: "stream-db --fsync batch, 1 version",
    threshold: 0.4,
    note: (connections, durationS) => `${connections} connections on one version, ${durationS} s`,
    settings: {},
  });
}
