// A relying party built on openid-client (and so on oauth4webapi, the core of Auth.js v5), one step per
// run: `node rp.mjs <state.json> <step> [argument]`. Each step reads and writes its state (the
// configuration, the PKCE verifier, state, nonce and the tokens) in the JSON file and prints one JSON
// line; a refusal prints {"refused": …} and exits 2. The library does every check of the specs itself.
import { readFileSync, writeFileSync } from "node:fs";
import * as client from "openid-client";

const [file, step, argument] = process.argv.slice(2);
const saved = JSON.parse(readFileSync(file, "utf8"));

const authentication = saved.clientSecret
  ? saved.authMethod === "post"
    ? client.ClientSecretPost(saved.clientSecret)
    : client.ClientSecretBasic(saved.clientSecret)
  : client.None();

async function configuration() {
  // Loopback HTTP in the tests; a real deployment's issuer is HTTPS.
  return client.discovery(new URL(saved.issuer), saved.clientId, undefined, authentication, {
    execute: [client.allowInsecureRequests],
  });
}

function print(value) {
  process.stdout.write(JSON.stringify(value) + "\n");
}

const steps = {
  async start(config) {
    saved.verifier = client.randomPKCECodeVerifier();
    saved.state = client.randomState();
    saved.nonce = client.randomNonce();
    const parameters = {
      redirect_uri: argument || saved.redirectUri,
      scope: saved.scope,
      state: saved.state,
      nonce: saved.nonce,
    };
    if (!saved.noPkce) {
      parameters.code_challenge = await client.calculatePKCECodeChallenge(saved.verifier);
      parameters.code_challenge_method = "S256";
    }
    if (saved.maxAge !== undefined) parameters.max_age = String(saved.maxAge);
    if (saved.prompt) parameters.prompt = saved.prompt;
    return { url: client.buildAuthorizationUrl(config, parameters).href };
  },
  async callback(config) {
    const tokens = await client.authorizationCodeGrant(config, new URL(argument), {
      pkceCodeVerifier: saved.noPkce ? undefined : saved.verifier,
      expectedState: saved.state,
      expectedNonce: saved.nonce,
      maxAge: saved.maxAge,
      idTokenExpected: true,
    });
    saved.tokens = { ...tokens };
    return { tokens, claims: tokens.claims() };
  },
  async userinfo(config) {
    const claims = saved.tokens.id_token ? JSON.parse(Buffer.from(saved.tokens.id_token.split(".")[1], "base64url")) : {};
    return { userinfo: await client.fetchUserInfo(config, saved.tokens.access_token, claims.sub) };
  },
  async refresh(config) {
    const tokens = await client.refreshTokenGrant(config, argument || saved.tokens.refresh_token);
    saved.tokens = { ...tokens };
    return { tokens, claims: tokens.claims() };
  },
  async introspect(config) {
    return { introspection: await client.tokenIntrospection(config, argument || saved.tokens.access_token) };
  },
  async revoke(config) {
    await client.tokenRevocation(config, argument || saved.tokens.refresh_token);
    return { revoked: true };
  },
  async logout(config) {
    const url = client.buildEndSessionUrl(config, {
      id_token_hint: saved.tokens.id_token,
      post_logout_redirect_uri: argument,
      state: "bye",
    });
    return { url: url.href };
  },
};

try {
  const result = await steps[step](await configuration());
  writeFileSync(file, JSON.stringify(saved));
  print(result);
} catch (error) {
  writeFileSync(file, JSON.stringify(saved));
  // A 401 with a challenge is reported as the challenge; its body still says which OAuth error it is.
  const body = error.response ? await error.response.json().catch(() => null) : null;
  print({
    refused: {
      name: error.name,
      code: error.code ?? null,
      error: error.error ?? error.cause?.error ?? body?.error ?? null,
      challenge: Array.isArray(error.cause) ? (error.cause[0]?.scheme ?? null) : null,
      status: error.status ?? null,
      message: error.message,
    },
  });
  process.exit(2);
}
