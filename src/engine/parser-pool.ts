import { Piscina } from "piscina";
import type { ParseInput, ParseOutput } from "./property-parser.js";

/** The piscina pool that runs parse-task.ts; one task parses one slice of one body. */
export class ParserPool {
  private readonly pool: Piscina<ParseInput, ParseOutput>;

  constructor(threads: number | undefined) {
    this.pool = new Piscina({
      filename: new URL("./parse-task.js", import.meta.url).href,
      ...(threads === undefined ? {} : { minThreads: threads, maxThreads: threads }),
      idleTimeout: 60_000,
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
  }

  parse(input: ParseInput): Promise<ParseOutput> {
    return this.pool.run(input);
  }

  get threads(): number {
    return this.pool.threads.length;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
