// Micro-benchmark: what it costs to post a batch of small `write` messages to a worker
// thread, as plain objects (what the storage client sent before session 4) and packed
// (packed-writes.ts). Prints wall time and the CPU of both threads per batch.
// Run: npm run build && node bench/micro/storage-messages.mjs [BATCH] [ROUNDS]
import { Worker } from "node:worker_threads";
import { packBatch } from "../../dist/store/file/packed-writes.js";

const BATCH = Number(process.argv[2] ?? 24);
const ROUNDS = Number(process.argv[3] ?? 4000);
// The worker unpacks what it receives, as the storage worker does.
const unpackUrl = new URL("../../dist/store/file/packed-writes.js", import.meta.url).href;
const worker = new Worker(
  `const { parentPort } = require("node:worker_threads");
   import(${JSON.stringify(unpackUrl)}).then(({ unpackBatch }) => {
     parentPort.on("message", (m) => {
       if (m === "ping") parentPort.postMessage("pong");
       else unpackBatch(m, []);
     });
     parentPort.postMessage("ready");
   });`,
  { eval: true },
);
await new Promise((resolve) => worker.once("message", resolve));

/** A one-property write as Engine.writeBody sends it: ~70 canonical bytes, plain columns. */
function batch() {
  const msgs = [];
  for (let i = 0; i < BATCH; i++) {
    msgs.push({
      type: "write",
      writer: i,
      itemId: "sensor-1",
      version: 1 + (i % 100),
      expectedOffset: undefined,
      seal: false,
      bytes: new Uint8Array(70),
      props: { count: 1, names: ["temperature"], nameIds: [0], types: [1], lengths: [70] },
      id: i,
    });
  }
  return msgs;
}

const variants = {
  objects: () => {
    const msgs = batch();
    return [msgs, msgs.map((m) => m.bytes.buffer)];
  },
  packed: () => {
    const { wire, extra } = packBatch(batch());
    return [wire, extra];
  },
};

const results = {};
for (let pass = 0; pass < 3; pass++) {
  for (const [name, make] of Object.entries(variants)) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    for (let r = 0; r < ROUNDS; r++) {
      const [msg, transfer] = make();
      worker.postMessage(msg, transfer);
    }
    worker.postMessage("ping");
    await new Promise((resolve) => worker.once("message", resolve));
    const cpu = process.cpuUsage(cpu0);
    // The first pass warms both sides up.
    if (pass > 0) {
      (results[name] ??= []).push({
        wallUs: ((performance.now() - t0) * 1000) / ROUNDS,
        cpuUs: (cpu.user + cpu.system) / ROUNDS,
      });
    }
  }
}
console.log(`batches of ${BATCH} small writes, ${ROUNDS} batches per pass, 2 passes`);
for (const [name, runs] of Object.entries(results)) {
  const wall = runs.map((r) => r.wallUs.toFixed(1)).join(", ");
  const cpu = runs.map((r) => r.cpuUs.toFixed(1)).join(", ");
  console.log(`${name.padEnd(8)} per batch: wall ${wall} us; CPU of both threads ${cpu} us`);
}
await worker.terminate();
