import { Piscina } from "piscina";
import { type ParseInput, type ParseOutput, parseSlice } from "./property-parser.js";

/**
 * The piscina pool that runs parse-task.ts. Slices are batched: at most one task per
 * thread is in flight, and every slice that arrives meanwhile, from any request, rides
 * in the next task, so a burst of small requests pays one thread hop per batch rather
 * than per request. An idle pool sends a slice on its own at once. Small slices never
 * leave the calling thread.
 */

/** A batch closes at this many body bytes, so one huge slice does not hold up others long. */
const BATCH_BYTES = 1 << 20;
/**
 * Slices up to this size are parsed on the calling thread: for a small request the two
 * thread hops cost more than the parse (a 60-byte property parses in about a microsecond).
 */
export const INLINE_BYTES = 16 << 10;

interface Queued {
  input: ParseInput;
  resolve: (out: ParseOutput) => void;
  reject: (err: Error) => void;
}

/**
 * True when the slice may hold a binary value large enough to be compressed: that work
 * is never done on the calling (HTTP) thread, however small the slice.
 */
export function mayCompress(input: Pick<ParseInput, "bytes" | "compress">): boolean {
  const c = input.compress;
  if (!c || input.bytes.length < (c.minBytes / 3) * 4) return false;
  const b = input.bytes;
  return Buffer.from(b.buffer, b.byteOffset, b.length).includes("<binary");
}

export class ParserPool {
  private readonly pool: Piscina<ParseInput[], ParseOutput[]>;
  private readonly queue: Queued[] = [];
  private running = 0;

  /** `parserCrash`: the test hook of README "Fault injection". */
  constructor(threads: number | undefined, parserCrash?: string) {
    this.pool = new Piscina({
      filename: new URL("./parse-task.js", import.meta.url).href,
      workerData: { parserCrash },
      ...(threads === undefined ? {} : { minThreads: threads, maxThreads: threads }),
      idleTimeout: 60_000,
      atomics: "disabled",
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
  }

  parse(input: ParseInput): Promise<ParseOutput> {
    if (input.bytes.length <= INLINE_BYTES && !mayCompress(input)) {
      try {
        return Promise.resolve(parseSlice(input));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.pump();
    });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  private pump(): void {
    while (this.running < this.pool.options.maxThreads && this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n].input.bytes.length <= BATCH_BYTES)) {
        bytes += this.queue[n].input.bytes.length;
        n++;
      }
      this.run(this.queue.splice(0, n));
    }
  }

  private run(batch: Queued[]): void {
    this.running++;
    // A lone slice moves to the parser thread (the writer gave its bytes up). A batch is
    // copied, so that its slices can be retried one by one if a thread dies under it.
    const inputs = batch.map((q) => (batch.length === 1 ? q.input : { ...q.input, inPlace: false }));
    const transferList = batch.length === 1 ? [inputs[0].bytes.buffer as ArrayBuffer] : undefined;
    this.pool
      .run(inputs, { transferList })
      .then(
        (outs) => {
          for (let i = 0; i < batch.length; i++) batch[i].resolve(outs[i]);
        },
        (err: Error) => {
          // A thread died under the batch. Parsing is pure, so retry each slice alone:
          // only the one that kills its thread fails.
          if (batch.length === 1) batch[0].reject(err);
          else for (const q of batch) this.pool.run([q.input]).then(([out]) => q.resolve(out), q.reject);
        },
      )
      .finally(() => {
        this.running--;
        this.pump();
      });
  }
}
