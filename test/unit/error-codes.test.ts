import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { STATUS_OF } from "../../dist/http/error-status.js";
import { ROOT } from "../helpers/server.js";

describe("error codes", () => {
  it("the README's table lists exactly the codes there are, with their statuses", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const table = readme.split("## Errors")[1].split("\n## ")[0];
    const rows = [...table.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(Object.fromEntries(rows)).toEqual({ ...STATUS_OF });
    expect(rows).toHaveLength(36);
  });
});
