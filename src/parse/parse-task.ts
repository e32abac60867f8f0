import { workerData } from "node:worker_threads";
import { move, transferableSymbol, valueSymbol } from "piscina";
import { releaseBuffers } from "../core/release.js";
import { outputTransferables, type ParseInput, type ParseOutput, parseSlice } from "./property-parser.js";

/** Test hook (README, "Fault injection"): a body containing this string kills the thread. */
const crashMarker = (workerData as { parserCrash?: string } | null)?.parserCrash;

/**
 * The piscina task handler: one call parses a batch of slices, each of one request body. The canonical
 * bytes and index arrays go back by transfer, not by copy; each is a fresh ArrayBuffer
 * (the input's own, TextEncoder, typed-array `from`), never a slab shared with other
 * buffers, so moving it is safe.
 */
export default function parseTask(inputs: ParseInput[]) {
  const results: ParseOutput[] = [];
  const transfer: ArrayBuffer[] = [];
  for (const input of inputs) {
    if (
      crashMarker &&
      Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.length).includes(crashMarker)
    ) {
      process.exit(70); // in a worker thread this ends the thread, as a crash would
    }
    const result = parseSlice(input);
    results.push(result);
    const moved = outputTransferables(result);
    transfer.push(...moved);
    // The slice is this thread's (moved or copied here); unless its bytes go back as the
    // output, nothing needs them any more.
    if (!moved.includes(input.bytes.buffer as ArrayBuffer)) releaseBuffers([input.bytes.buffer as ArrayBuffer]);
  }
  return move({
    [transferableSymbol]: transfer,
    [valueSymbol]: results,
  } as unknown as ArrayBuffer) as unknown as ParseOutput[];
}
