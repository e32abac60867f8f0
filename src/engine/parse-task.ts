import { move, transferableSymbol, valueSymbol } from "piscina";
import { type ParseInput, type ParseOutput, parseSlice } from "./property-parser.js";

/**
 * The piscina task handler: one call parses one slice of one request body. The canonical
 * bytes go back by transfer, not by copy; `out` is always a fresh ArrayBuffer from
 * TextEncoder, never a slab shared with other buffers, so moving it is safe.
 */
export default function parseTask(input: ParseInput) {
  const result = parseSlice(input);
  return move({
    [transferableSymbol]: [result.out.buffer],
    [valueSymbol]: result,
  } as unknown as ArrayBuffer) as unknown as ParseOutput;
}
