// Reference: the limit of the work of an NDJSON catch-up. A bare loop, no HTTP: reads the
// data file given with --file PATH in 1 MiB chunks, cuts it into lines, takes each
// canonical property line apart with one regex, and writes its record
// {"offset","next","name","type","value"} with JSON.stringify, counting the bytes.
// Prints one JSON line: { props, bytes, ms }.
import { closeSync, openSync, readSync } from "node:fs";

const i = process.argv.indexOf("--file");
const file = process.argv[i + 1];
if (i < 0 || !file) {
  console.error("usage: ndjson-loop.mjs --file PATH");
  process.exit(2);
}

const LINE = /^<property for="([^"]*)"><(string|number|boolean|datetime|binary)>(.*)<\/\2><\/property>$/;
const ENTITY = /&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g;
const NAMED = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
const unescapeXml = (s) =>
  s.includes("&")
    ? s.replace(ENTITY, (_, e) =>
        e[0] === "#"
          ? String.fromCodePoint(e[1] === "x" ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)))
          : NAMED[e],
      )
    : s;

const fd = openSync(file, "r");
const buf = Buffer.allocUnsafe(1 << 20);
let carry = "";
let pos = 0;
let lineAt = 0;
let props = 0;
let bytes = 0;
const t0 = performance.now();
for (;;) {
  const n = readSync(fd, buf, 0, buf.length, pos);
  if (n === 0) break;
  pos += n;
  const text = carry + buf.toString("utf8", 0, n);
  let from = 0;
  for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", from)) {
    const line = text.slice(from, nl);
    const next = lineAt + Buffer.byteLength(line) + 1;
    const m = LINE.exec(line);
    if (m) {
      const type = m[2];
      const value =
        type === "number"
          ? Number(m[3])
          : type === "boolean"
            ? m[3] === "true"
            : type === "string"
              ? unescapeXml(m[3])
              : m[3];
      bytes += JSON.stringify({ offset: lineAt, next, name: unescapeXml(m[1]), type, value }).length + 1;
      props++;
    }
    lineAt = next;
    from = nl + 1;
  }
  carry = text.slice(from);
}
closeSync(fd);
console.log(JSON.stringify({ props, bytes, ms: performance.now() - t0 }));
