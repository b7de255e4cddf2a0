// Verify a session JWT the way a Node backend does (panva/jose): reads {token, jwks, issuer, audience,
// now} as JSON on stdin, with the clock at `now` (seconds) and no clock tolerance; prints the claims or
// {"error": code}. Used by tests/signing/test_jwt.py.
import { createLocalJWKSet, jwtVerify } from "jose";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { token, jwks, issuer, audience, now } = JSON.parse(input);
try {
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), {
    issuer,
    audience,
    currentDate: new Date(now * 1000),
    clockTolerance: 0,
  });
  process.stdout.write(JSON.stringify(payload));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: error.code ?? String(error) }));
}
