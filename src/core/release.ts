import { MessageChannel } from "node:worker_threads";

/**
 * Frees ArrayBuffers now rather than at this thread's next garbage collection. A thread
 * that allocates little JavaScript (the storage worker, a parser) collects rarely, so the
 * large buffers handed to it would stay in memory, dead, until external-memory pressure
 * forced a collection tens of MiB later. Moved into a message that nobody can receive,
 * they are detached and their memory is released at once.
 */
const sink = new MessageChannel();
sink.port2.close();
sink.port1.unref();

/** Buffers at least this large are worth a release; smaller ones go with the next collection. */
export const RELEASE_BYTES = 64 << 10;

/** The caller owns every buffer and no view of them is used again. */
export function releaseBuffers(buffers: Iterable<ArrayBuffer>): void {
  const big = new Set<ArrayBuffer>();
  for (const b of buffers) if (b.byteLength >= RELEASE_BYTES) big.add(b);
  if (big.size > 0) sink.port1.postMessage(null, [...big]);
}
