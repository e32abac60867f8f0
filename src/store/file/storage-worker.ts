import { parentPort, workerData } from "node:worker_threads";
import { postingLog } from "../../core/log.js";
import type { FromStorage, StorageWorkerData, ToStorageWire } from "./protocol.js";
import { Storage } from "./storage.js";

/**
 * The storage worker thread's entry: the only thread that writes to the data dir. It
 * wires workerData and the port to Storage, which holds all the work.
 */

const port = parentPort;
if (!port) throw new Error("storage-worker must run as a worker thread");
const { dataDir, fsync, lengths, metaIntervalMs, faults } = workerData as StorageWorkerData;
const storage = new Storage({
  dataDir,
  fsync,
  lengths,
  metaIntervalMs,
  faults,
  post: (msg) => port.postMessage(msg),
  log: postingLog((level, message, fields) => port.postMessage({ type: "log", level, message, fields })),
});
const started = performance.now();
const recovered = storage.recover();
port.postMessage({ type: "ready", ...recovered, ms: Math.round(performance.now() - started) } satisfies FromStorage);
port.on("message", (batch: ToStorageWire[]) => storage.receive(batch));
