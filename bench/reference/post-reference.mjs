// Reference (a): the floor for a POST. Plain node:http, reads the whole body, answers 200
// with a small JSON body (about the size of stream-db's answer). Nothing is parsed or stored.
import http from "node:http";

const server = http.createServer((req, res) => {
  let bytes = 0;
  req.on("data", (chunk) => {
    bytes += chunk.length;
  });
  req.on("end", () => {
    const body = JSON.stringify({ ok: true, bytes });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(`post-reference listening on http://127.0.0.1:${server.address().port}`);
});

process.once("SIGTERM", () => process.exit(0));
