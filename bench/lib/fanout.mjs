// One fan-out measurement against one target (lib/targets.mjs): readers in child processes,
// a writer in this process, the server's CPU and RSS from /proc.
import { cpuMs, ProcMeter, rssBytes } from "./proc.mjs";
import { startReaders } from "./readers.mjs";
import { sleep, summarize } from "./stats.mjs";
import { pacedWriter, saturatingWriter } from "./writer.mjs";

/**
 * options: { readers, procs, batch, rate, durationMs } for a paced writer (latency), or
 * { readers, procs, batch, saturate: { loops, durationMs } } for a writer as fast as it can.
 * drainMs bounds the wait for the readers to finish after the stream is ended.
 */
export async function runFanout(target, o) {
  const pid = target.server.pid;
  await target.setup();
  await sleep(300);
  const rssBefore = rssBytes(pid);
  const paced = !o.saturate;
  const maxSeq = paced ? Math.floor((o.rate * o.durationMs) / 1000) : 0;
  const group = await startReaders({
    url: target.readUrl,
    headers: target.readHeaders ?? {},
    count: o.readers,
    procs: o.procs,
    batch: o.batch ?? 100,
    mode: paced ? "latency" : "count",
    maxSeq,
  });
  try {
    const connected = group.connected;
    await sleep(o.settleMs ?? 1000);
    const rssIdle = rssBytes(pid);
    const meter = new ProcMeter(pid).start();
    const clientCpu0 = group.children.reduce((sum, c) => sum + cpuMs(c.pid), 0);
    const w = paced
      ? await pacedWriter({
          origin: target.origin,
          path: target.writePath,
          headers: target.writeHeaders,
          rate: o.rate,
          durationMs: o.durationMs,
        })
      : await saturatingWriter({
          origin: target.origin,
          path: target.writePath,
          headers: target.writeHeaders,
          ...o.saturate,
        });
    let finishError = null;
    await target.finish().catch((err) => {
      finishError = String(err.message ?? err);
    });
    const drained = await group.waitDone(o.drainMs ?? 30_000);
    const usage = meter.stop();
    const clientCpuMs = group.children.reduce((sum, c) => sum + cpuMs(c.pid), 0) - clientCpu0;
    const rep = await group.collect();
    const out = { connected, rssBefore, rssIdle, usage, clientCpuMs, writer: w, drained, finishError };
    out.readersEnded = rep.ended;
    // Share of the machine's cores busy in the server and in the reader processes.
    out.serverCores = usage.cpuMs / usage.wallMs;
    out.readerCores = clientCpuMs / usage.wallMs;
    out.idleRssPerReader = connected.ok ? (rssIdle - rssBefore) / connected.ok : Number.NaN;
    if (paced) {
      // Latency of a property = when the LAST reader had it, minus when the writer sent it.
      const lat = [];
      let deliveries = 0;
      let incomplete = 0;
      for (let s = 0; s < w.sent; s++) {
        deliveries += rep.cnt[s];
        if (rep.cnt[s] >= connected.ok && rep.maxLat[s] >= 0) lat.push(rep.maxLat[s]);
        else incomplete++;
      }
      out.latency = summarize(lat);
      out.deliveries = deliveries;
      out.expected = w.ok * connected.ok;
      out.incomplete = incomplete;
    } else {
      out.deliveries = rep.lines - target.overheadLines * rep.ended;
      out.expected = w.ok * connected.ok;
      out.spanMs = rep.lastByteAt - w.startAt;
      out.deliveriesPerS = out.deliveries / (out.spanMs / 1000);
      out.writeSpanMs = w.endAt - w.startAt;
      out.propsPerS = w.ok / (out.writeSpanMs / 1000);
    }
    out.complete = out.expected > 0 && out.deliveries >= out.expected && (!paced || w.sent === w.scheduled);
    out.cpuPerKDeliveries = out.deliveries ? (usage.cpuMs * 1000) / out.deliveries : Number.NaN;
    return out;
  } finally {
    await group.close();
  }
}

/** Human-readable problems with a fan-out run, for the report's notes. */
export function fanoutProblems(label, r) {
  const p = [];
  if (r.connected.failed)
    p.push(`${r.connected.failed} readers failed to connect (${JSON.stringify(r.connected.statuses)})`);
  if (r.writer.failed) p.push(`${r.writer.failed} writes failed (${JSON.stringify(r.writer.statuses)})`);
  if (r.finishError) p.push(`ending the stream failed: ${r.finishError}`);
  if (!r.drained)
    p.push(`readers had not all finished ${r.readersEnded}/${r.connected.ok} when the drain wait ran out`);
  if (r.deliveries < r.expected) p.push(`${r.expected - r.deliveries} of ${r.expected} deliveries missing`);
  if (r.incomplete) p.push(`${r.incomplete} properties did not reach every reader`);
  if (r.writer.scheduled > r.writer.sent) {
    p.push(`the writer fell behind and sent ${r.writer.sent} of ${r.writer.scheduled} properties in its time`);
  }
  return p.length ? `${label}: ${p.join("; ")}` : null;
}
