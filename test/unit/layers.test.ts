import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/server.js";

/**
 * The layers of src/ and the one direction of their imports (README, "Architecture"):
 * core, format, schema, parse, store (the seam, then its backends), index, engine, http, protocols,
 * then start-up. A file may import its own layer and the ones before it, and:
 * - the engine sees storage only through the seam (store/types.ts);
 * - a backend never imports the engine or anything after it;
 * - only start-up (start.ts, config.ts) names a backend;
 * - the HTTP side and the protocols reach the engine through its one door (engine/index.ts).
 */

const SRC = join(ROOT, "src");
const ORDER = [
  "core",
  "format",
  "schema",
  "parse",
  "store",
  "index",
  "engine",
  "http",
  "protocols",
  "start-up",
] as const;
type Layer = (typeof ORDER)[number];

function layerOf(file: string): Layer {
  const top = file.split("/")[0];
  return (ORDER as readonly string[]).includes(top) ? (top as Layer) : "start-up";
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (entry.name.endsWith(".ts")) yield relative(SRC, path);
  }
}

/** Every relative import of a file (static, dynamic and `new URL` worker entries), as paths under src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  const specs = [
    ...text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g),
    ...text.matchAll(/new URL\("(\.{1,2}\/[^"]+)"/g),
  ].map((m) => m[1]);
  return specs.map((s) => relative(SRC, resolve(join(SRC, dirname(file)), s)).replace(/\.js$/, ".ts"));
}

function violations(file: string, target: string): string[] {
  const from = layerOf(file);
  const to = layerOf(target);
  const found: string[] = [];
  if (ORDER.indexOf(to) > ORDER.indexOf(from)) found.push(`${from} imports ${to}, a layer after it`);
  const backend = target.startsWith("store/") && target !== "store/types.ts";
  const inBackend = file.startsWith("store/") && file !== "store/types.ts";
  if (backend && !inBackend && file !== "start.ts" && file !== "config.ts") found.push("names a backend");
  if (from === "engine" && to === "store" && target !== "store/types.ts") found.push("engine past the seam");
  if ((from === "http" || from === "protocols") && to === "engine" && target !== "engine/index.ts")
    found.push("engine not through its door");
  if (from === "store" && file === "store/types.ts" && backend) found.push("the seam names a backend");
  return found.map((v) => `${file} -> ${target}: ${v}`);
}

describe("layers", () => {
  const files = [...sources(SRC)];

  it("every import points down, through the seam and the door", () => {
    const bad = files.flatMap((f) => importsOf(f).flatMap((t) => violations(f, t)));
    expect(bad).toEqual([]);
  });

  it("the rules catch what they are for", () => {
    expect(violations("engine/feed.ts", "http/app.ts")).toHaveLength(1);
    expect(violations("store/file/storage.ts", "engine/index.ts")).toHaveLength(1);
    expect(violations("engine/index.ts", "store/file/index.ts")).toHaveLength(2);
    expect(violations("http/app.ts", "engine/feed.ts")).toHaveLength(1);
    expect(violations("core/names.ts", "format/item-file.ts")).toHaveLength(1);
    expect(violations("start.ts", "store/file/index.ts")).toEqual([]);
  });

  it("errors are built only by the error module's factories", () => {
    const builders = files.filter(
      (f) => f !== "core/errors.ts" && /new DbError\(/.test(readFileSync(join(SRC, f), "utf8")),
    );
    expect(builders).toEqual([]);
  });

  it("only start-up's logger loads pino: no worker thread pays for it", () => {
    const users = files.filter((f) => /from "pino"/.test(readFileSync(join(SRC, f), "utf8")));
    expect(users).toEqual(["logger.ts"]);
  });

  it("logs go through the logger: no console outside the entry point", () => {
    const users = files.filter(
      (f) => f !== "server.ts" && /console\.(log|error|warn|info)/.test(readFileSync(join(SRC, f), "utf8")),
    );
    expect(users).toEqual([]);
  });
});
