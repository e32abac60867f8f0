// Reference (c): the floor for live fan-out. Every GET is held open; every POST body is
// written, whole, to every open GET response. POST /end ends every open GET response.
// No storage, no parsing, no backpressure handling: the least a fan-out server can do.
import http from "node:http";

const subscribers = new Set();

const server = http.createServer((req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/xml; charset=utf-8" });
    res.flushHeaders();
    subscribers.add(res);
    res.on("close", () => subscribers.delete(res));
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    if (req.url === "/end") {
      for (const sub of subscribers) sub.end();
      subscribers.clear();
    } else {
      const body = Buffer.concat(chunks);
      for (const sub of subscribers) sub.write(body);
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": 2 });
    res.end("{}");
  });
});
server.listen(0, "127.0.0.1", () => {
  console.log(`pubsub-reference listening on http://127.0.0.1:${server.address().port}`);
});

process.once("SIGTERM", () => process.exit(0));
