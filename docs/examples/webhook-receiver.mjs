// A receiver for SEQN Auth webhooks in Node.js, verified with the Standard Webhooks library
// (docs/webhooks.md).
//
//   npm install standardwebhooks
//   WEBHOOK_SECRET=whsec_... node webhook-receiver.mjs        # an `hmac` endpoint (v1 signatures)
//   WEBHOOK_PUBLIC_KEY=whpk_... node webhook-receiver.mjs     # an `ed25519` endpoint (v1a, node:crypto)
//
// It listens on 127.0.0.1:$PORT (8080; 0 picks a free port) at /webhooks. Each delivery is verified
// over the raw body (signature, and a timestamp at most 5 minutes off), deduplicated on `webhook-id`,
// queued, and answered 204 at once; the processing runs after the answer, so a slow job never makes
// SEQN Auth time out and retry. With Express, read the raw body (`express.raw({ type: "application/json" })`),
// never re-serialised JSON.
import { createPublicKey, verify as verifySignature } from "node:crypto";
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

const TOLERANCE_SECONDS = 5 * 60;
const MAX_BODY_BYTES = 1024 * 1024;
const SECRET = process.env.WEBHOOK_SECRET;
const PUBLIC_KEY = process.env.WEBHOOK_PUBLIC_KEY;

// Ids already taken. Keep them in your database in production (a unique column, written in the
// transaction that applies the event), so a retry after a crash or a second server is caught too.
const seen = new Set();
const jobs = [];

const log = (line) => process.stdout.write(`${line}\n`);

class Rejected extends Error {}

// A `v1a,` signature: Ed25519 over `{webhook-id}.{webhook-timestamp}.{body}`; the `whpk_` key is
// base64 of the raw 32-byte public key, which node:crypto takes as a JWK's `x`.
function verifyEd25519(publicKey, body, headers) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !/^\d+$/.test(timestamp ?? "") || !signatures) {
    throw new Rejected("missing or malformed webhook headers");
  }
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) {
    throw new Rejected("message timestamp too old or too new");
  }
  const x = Buffer.from(publicKey.replace(/^whpk_/, ""), "base64").toString("base64url");
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  for (const versioned of signatures.split(" ")) {
    const [version, signature] = versioned.split(",", 2);
    if (version !== "v1a" || !signature) continue;
    try {
      if (verifySignature(null, signed, key, Buffer.from(signature, "base64"))) {
        return JSON.parse(body.toString("utf8"));
      }
    } catch {
      // a malformed signature: try the next one
    }
  }
  throw new Rejected("no matching v1a signature");
}

function verify(body, headers) {
  if (PUBLIC_KEY) return verifyEd25519(PUBLIC_KEY, body, headers);
  // Checks every `v1,` signature in the header (two during a secret rotation's overlap) and rejects a
  // timestamp more than 5 minutes off; throws WebhookVerificationError otherwise.
  return new Webhook(SECRET).verify(body, headers);
}

function processJobs() {
  while (jobs.length > 0) {
    const event = jobs.shift();
    // Your processing: e.g. on `user.deleted`, remove the user's data. `event.version` is the payload
    // version; ignore types you do not know (new ones may be added).
    log(`processed ${event.id} ${event.type}`);
  }
}

const server = createServer((request, response) => {
  const answer = (status) => response.writeHead(status, { "content-length": "0" }).end();
  if (request.method !== "POST" || request.url !== "/webhooks") return answer(404);
  const chunks = [];
  let size = 0;
  request.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) request.destroy();
    else chunks.push(chunk);
  });
  request.on("end", () => {
    const body = Buffer.concat(chunks);
    const id = request.headers["webhook-id"] ?? "";
    let event;
    try {
      event = verify(body, request.headers);
    } catch (error) {
      log(`rejected ${id}: ${error.message}`);
      return answer(400);
    }
    if (seen.has(id)) {
      // a retry of a message already taken (at-least-once delivery): answer 2xx again
      log(`duplicate ${id}`);
      return answer(204);
    }
    seen.add(id);
    jobs.push({ id, ...event });
    answer(204); // fast: the work runs after the answer
    setImmediate(processJobs);
  });
});

if (!SECRET && !PUBLIC_KEY) {
  console.error("set WEBHOOK_SECRET (whsec_...) or WEBHOOK_PUBLIC_KEY (whpk_...)");
  process.exit(2);
}
const host = process.env.HOST ?? "127.0.0.1";
server.listen(Number(process.env.PORT ?? 8080), host, () => {
  log(`listening on http://${host}:${server.address().port}/webhooks`);
});
