// How to create, write, follow and end one stream on each kind of server, so that the
// fan-out code is the same for stream-db, the pub/sub reference and the durable-streams peer.
// setup() first warms the server up with 200 writes that no measured reader sees.
import { call } from "./http.mjs";
import { warmup } from "./writer.mjs";

export function streamDbTarget(server, item = "fan", version = 1) {
  const writePath = `/write-item-stream/${item}/${version}`;
  const writeHeaders = { "content-type": "application/xml" };
  return {
    server,
    label: server.name,
    origin: server.url,
    writePath,
    writeHeaders,
    readUrl: `${server.url}/read-item-stream/${item}/${version}`,
    overheadLines: 2, // "<item>" and "</item>"
    async setup() {
      await warmup({ origin: server.url, path: `/write-item-stream/${item}-warmup/1`, headers: writeHeaders });
      const r = await call(server.url + writePath, { method: "POST", headers: writeHeaders, body: "" });
      if (r.status !== 200) throw new Error(`creating ${item}/${version}: ${r.status} ${r.body}`);
    },
    async finish() {
      const r = await call(`${server.url}${writePath}?seal=true`, { method: "POST", headers: writeHeaders, body: "" });
      if (r.status !== 200) throw new Error(`sealing ${item}/${version}: ${r.status} ${r.body}`);
    },
  };
}

export function pubsubTarget(server) {
  const writeHeaders = { "content-type": "application/xml" };
  return {
    server,
    label: server.name,
    origin: server.url,
    writePath: "/pub",
    writeHeaders,
    readUrl: `${server.url}/sub`,
    overheadLines: 0,
    async setup() {
      await warmup({ origin: server.url, path: "/pub", headers: writeHeaders }); // no subscriber yet
    },
    async finish() {
      await call(`${server.url}/end`, { method: "POST", body: "" });
    },
  };
}

/** A durable-streams stream: PUT creates it, POST appends, SSE follows, Stream-Closed ends it. */
export function durableTarget(server, name = "fan") {
  const writePath = `/streams/${name}`;
  const writeHeaders = { "content-type": "text/plain" };
  return {
    server,
    label: server.name,
    origin: server.url,
    writePath,
    writeHeaders,
    readUrl: `${server.url}${writePath}?offset=-1&live=sse`,
    overheadLines: 0,
    async setup() {
      for (const path of [`${writePath}-warmup`, writePath]) {
        const r = await call(server.url + path, { method: "PUT", headers: writeHeaders });
        if (r.status !== 201 && r.status !== 200) throw new Error(`creating stream ${path}: ${r.status} ${r.body}`);
      }
      await warmup({ origin: server.url, path: `${writePath}-warmup`, headers: writeHeaders });
    },
    async finish() {
      await call(server.url + writePath, { method: "POST", headers: { "stream-closed": "true" }, body: "" });
    },
  };
}
