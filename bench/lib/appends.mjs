// The small-append load: autocannon in this process against a server in another,
// with that server's CPU time and peak RSS measured over the run.
import autocannon from "autocannon";
import { ProcMeter } from "./proc.mjs";

/** One ~60-byte property: `<property for="name"><string>John Doe 42</string></property>`. */
export const SMALL_PROPERTY = '<property for="name"><string>John Doe 42</string></property>';
export const XML = { "content-type": "application/xml" };

export const streamDbPaths = (n, prefix = "bench") =>
  Array.from({ length: n }, (_, i) => `/write-item-stream/${prefix}-${i}/1`);

export function cannon({ url, connections, durationS, paths, headers, body }) {
  let i = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections,
        duration: durationS,
        pipelining: 1,
        requests: [
          {
            method: "POST",
            headers,
            body,
            setupRequest: (req) => {
              req.path = paths[i++ % paths.length];
              return req;
            },
          },
        ],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

/** Warm up for `warmupS`, then measure `durationS`. Returns the figures for one table row. */
export async function measureAppends(server, { connections, durationS, warmupS = 1, paths, headers = XML }) {
  const opts = { url: server.url, connections, paths, headers, body: SMALL_PROPERTY };
  if (warmupS > 0) await cannon({ ...opts, durationS: warmupS });
  const meter = new ProcMeter(server.pid).start();
  const r = await cannon({ ...opts, durationS });
  const usage = meter.stop();
  const ok = r["2xx"];
  return {
    rps: ok / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
    max: r.latency.max,
    ok,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    cpuMs: usage.cpuMs,
    cpuPerKReq: ok ? (usage.cpuMs * 1000) / ok : Number.NaN,
    peakRss: usage.peakRss,
  };
}
