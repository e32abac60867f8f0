// Reference (b): the floor for reading a file over HTTP. Every GET streams the one file given
// with --file PATH through fs.createReadStream (default 64 KiB chunks) with its length.
import { createReadStream, statSync } from "node:fs";
import http from "node:http";

const i = process.argv.indexOf("--file");
const file = process.argv[i + 1];
if (i < 0 || !file) {
  console.error("usage: file-reference.mjs --file PATH");
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const { size } = statSync(file);
  res.writeHead(200, { "content-type": "application/xml; charset=utf-8", "content-length": size });
  if (req.method === "HEAD") return res.end();
  const stream = createReadStream(file);
  stream.pipe(res);
  res.on("close", () => stream.destroy());
});
server.listen(0, "127.0.0.1", () => {
  console.log(`file-reference listening on http://127.0.0.1:${server.address().port}`);
});

process.once("SIGTERM", () => process.exit(0));
