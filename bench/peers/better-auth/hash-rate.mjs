// Raw password-verify rate of the hash better-auth's email sign-in uses, measured the way its server runs it.
//
// better-auth 1.7.5 verifies with @better-auth/utils/password, whose "node" export is node:crypto's async
// scrypt (N=16384, r=16, p=1, 64-byte key): each verification runs on libuv's thread pool, off the event
// loop, and the server puts no bound of its own on them, so under a sign-in load as many run at once as
// the pool has threads (UV_THREADPOOL_SIZE, 4 by default). We keep twice that many in flight so the pool
// never idles between completions, exactly as a queue of concurrent sign-ins would.
//
// Usage: node hash-rate.mjs SECONDS   -> prints one JSON line
import { hashPassword, verifyPassword } from "better-auth/crypto";

const seconds = Number(process.argv[2] ?? "3");
const poolThreads = Number(process.env.UV_THREADPOOL_SIZE ?? "4");
const inFlight = poolThreads * 2;

const password = "bench-password-123";
const hash = await hashPassword(password);
if (!(await verifyPassword({ hash, password }))) throw new Error("verify failed on its own hash");

let done = 0;
const started = process.hrtime.bigint();
const until = started + BigInt(Math.round(seconds * 1e9));

async function lane() {
  while (process.hrtime.bigint() < until) {
    if (!(await verifyPassword({ hash, password }))) throw new Error("verify failed");
    done += 1;
  }
}

await Promise.all(Array.from({ length: inFlight }, lane));
const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
console.log(
  JSON.stringify({
    hash: "scrypt N=16384 r=16 p=1 dkLen=64 (node:crypto, libuv thread pool)",
    pool_threads: poolThreads,
    in_flight: inFlight,
    verifies: done,
    seconds: elapsed,
    per_second: done / elapsed,
  }),
);
