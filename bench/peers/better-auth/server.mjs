// better-auth as its users run it on Node: the peer of the side-by-side benchmark.
//
// Environment:
//   BENCH_PEER_DATABASE_URL   postgres://... (required; the schema is created there on start)
//   BENCH_PEER_PORT           port on 127.0.0.1 (required)
//   BENCH_PEER_COOKIE_CACHE   "1" turns the signed session cookie cache on, anything else off
//   BENCH_PEER_COOKIE_CACHE_MAX_AGE  seconds a cached session cookie stays trusted (default 3600, so a
//                             long benchmark does not silently fall back to the database half-way)
//   BENCH_PEER_SECRET         signing secret (a fixed bench value when unset)
//
// Prints "ready http://127.0.0.1:PORT" on stdout once it is listening.
import http from "node:http";

import { apiKey } from "@better-auth/api-key";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import pg from "pg";

const databaseUrl = process.env.BENCH_PEER_DATABASE_URL;
const port = Number(process.env.BENCH_PEER_PORT);
if (!databaseUrl || !Number.isInteger(port) || port <= 0) {
  console.error("BENCH_PEER_DATABASE_URL and BENCH_PEER_PORT are required");
  process.exit(2);
}
const cookieCache = process.env.BENCH_PEER_COOKIE_CACHE === "1";
const cookieCacheMaxAge = Number(process.env.BENCH_PEER_COOKIE_CACHE_MAX_AGE ?? "3600");
const baseURL = `http://127.0.0.1:${port}`;

const options = {
  baseURL,
  secret: process.env.BENCH_PEER_SECRET ?? "bench-peer-secret-not-for-production-0123456789",
  database: new pg.Pool({ connectionString: databaseUrl, max: 10 }),
  emailAndPassword: { enabled: true },
  session: { cookieCache: { enabled: cookieCache, maxAge: cookieCacheMaxAge } },
  // We measure the server, not its limiters: both the global one and the plugin's per-key one are off.
  rateLimit: { enabled: false },
  plugins: [apiKey({ rateLimit: { enabled: false } })],
  telemetry: { enabled: false },
  logger: { level: "error" },
};

const { runMigrations } = await getMigrations(options);
await runMigrations();

const auth = betterAuth(options);
const authHandler = toNodeHandler(auth);

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

// verifyApiKey is server-only in the plugin (no HTTP route), so an application exposes it through its own
// route; this is that route, shaped like SEQN's key check: key in a header, 200 when valid, 401 otherwise.
async function verifyKey(req, res) {
  const key = req.headers["x-api-key"];
  if (typeof key !== "string" || key === "") {
    answer(res, 401, { valid: false });
    return;
  }
  const result = await auth.api.verifyApiKey({ body: { key } });
  if (result.valid) {
    answer(res, 200, { valid: true, id: result.key.id, referenceId: result.key.referenceId });
  } else {
    answer(res, 401, { valid: false, code: result.error?.code ?? null });
  }
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/bench/verify-key") {
    verifyKey(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) answer(res, 500, { valid: false });
    });
    return;
  }
  authHandler(req, res);
});
server.keepAliveTimeout = 65_000;

server.listen(port, "127.0.0.1", () => {
  console.log(`ready ${baseURL}`);
});

function stop() {
  server.close(() => {
    options.database.end().finally(() => process.exit(0));
  });
  server.closeAllConnections();
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
