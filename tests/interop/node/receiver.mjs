// A webhook receiver built on the npm implementation of Standard Webhooks, for the interop tests.
// SECRETS (space-separated whsec_ secrets) are each tried alone; every request prints one JSON line
// on stdout: {"id": webhook-id, "verified_by": [indexes of the secrets that verify it], "type": ...}.
// It answers 204 when at least one secret verifies, 400 otherwise. The first line is {"port": N}.
import http from "node:http";
import { Webhook } from "standardwebhooks";

const hooks = (process.env.SECRETS || "").split(" ").filter(Boolean).map((secret) => new Webhook(secret));

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const body = Buffer.concat(chunks).toString("utf8");
    const verifiedBy = [];
    let type = null;
    hooks.forEach((hook, index) => {
      try {
        type = hook.verify(body, request.headers).type;
        verifiedBy.push(index);
      } catch (error) {
        // not this secret, or tampered, or stale: the line says which verified
      }
    });
    process.stdout.write(JSON.stringify({ id: request.headers["webhook-id"] || null, verified_by: verifiedBy, type }) + "\n");
    response.writeHead(verifiedBy.length ? 204 : 400);
    response.end();
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
