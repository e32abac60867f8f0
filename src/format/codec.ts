import * as zlib from "node:zlib";

/**
 * The codecs a large binary value may be stored with (README, "Compression"): the stored
 * line names one and the value's original length, and its base64 holds the compressed
 * bytes. gzip at level 6 (as `gzip -6`), brotli at quality 5 (its speed near gzip's),
 * zstd at level 3 where the running Node has it.
 */

export type Codec = "gzip" | "br" | "zstd";
export const CODECS: readonly Codec[] = ["gzip", "br", "zstd"];

type Zstd = { zstdCompressSync(b: Uint8Array, o?: object): Buffer; zstdDecompressSync(b: Uint8Array): Buffer };
const zstd = zlib as unknown as Partial<Zstd>;

/** zstd is in node:zlib from Node 22.15 and 23.8 on. */
export function hasCodec(codec: Codec): boolean {
  return codec !== "zstd" || typeof zstd.zstdCompressSync === "function";
}

export function compress(codec: Codec, raw: Uint8Array): Buffer {
  switch (codec) {
    case "gzip":
      return zlib.gzipSync(raw, { level: 6 });
    case "br":
      return zlib.brotliCompressSync(raw, {
        params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: raw.length },
      });
    case "zstd":
      return (zstd as Zstd).zstdCompressSync(raw);
  }
}

export function decompress(codec: Codec, stored: Uint8Array): Buffer {
  switch (codec) {
    case "gzip":
      return zlib.gunzipSync(stored);
    case "br":
      return zlib.brotliDecompressSync(stored);
    case "zstd":
      return (zstd as Zstd).zstdDecompressSync(stored);
  }
}

const SAMPLE_BYTES = 64 << 10;
/** A sample that fast deflate leaves this large will not save a tenth at any level. */
const SAMPLE_GIVES_UP = 0.97;

/** Kept compressed only when that saves at least this share of the original. */
const MIN_SAVING = 0.1;

/**
 * The value as it is stored: compressed, if it is at least `minBytes` and compression saves
 * at least a tenth; null to store it as it came.
 */
export function compressValue(codec: Codec, raw: Uint8Array, minBytes: number): Buffer | null {
  if (raw.length < minBytes) return null;
  // Incompressible data (random bytes, media already compressed) is told by a sample
  // at gzip's fastest level, instead of by compressing all of it for nothing.
  if (raw.length >= 2 * SAMPLE_BYTES) {
    const sample = zlib.deflateRawSync(raw.subarray(0, SAMPLE_BYTES), { level: 1 });
    if (sample.length > SAMPLE_BYTES * SAMPLE_GIVES_UP) return null;
  }
  const packed = compress(codec, raw);
  return packed.length <= raw.length * (1 - MIN_SAVING) ? packed : null;
}
