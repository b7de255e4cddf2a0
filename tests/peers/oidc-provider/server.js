// A real OpenID provider (panva/oidc-provider) on loopback for the console OIDC client tests.
// Prints one JSON line {"issuer": ...} on stdout once it listens. Test-only controls under /__test/:
//   POST /__test/accounts  {sub, email, name, groups}      an account findAccount returns
//   POST /__test/tamper    {set, unset, exp_offset, foreign_key}
//        rewrites the NEXT token response's ID token and signs it again with the provider's own key
//        (or, with foreign_key, with a key the provider never published) - for the refusal tests.
// Login is non-interactive: POST /interaction/<uid>/login with sub=<sub>&amr=pwd,mfa.
import http from 'node:http';
import { Provider } from 'oidc-provider';
import * as jose from 'jose';

const clientId = process.env.CLIENT_ID || 'silver-console';
const clientSecret = process.env.CLIENT_SECRET;
const redirectUri = process.env.REDIRECT_URI;
if (!clientSecret || !redirectUri) {
  console.error('CLIENT_SECRET and REDIRECT_URI are required');
  process.exit(2);
}

const accounts = new Map();
let tamper = null;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signing = { ...(await jose.exportJWK(privateKey)), kid: 'provider-key', alg: 'RS256', use: 'sig' };
const foreign = (await jose.generateKeyPair('RS256')).privateKey;

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;
// ISSUER: stand in for one Authentik application (`<authentik>/application/o/<slug>/`), reached through
// the contract server's host; Authentik's endpoint paths are mapped to the provider's own below.
const issuer = process.env.ISSUER || origin;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signing] },
  cookies: { keys: ['test-only-cookie-key-not-a-secret'] },
  claims: {
    openid: ['sub', 'amr', 'auth_time'], // like Authentik: amr rides along in the ID token
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username', 'groups'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return { accountId: sub, claims: async () => ({ sub, email_verified: true, ...account }) };
  },
  // A first-party console: consent is implied, as with Authentik's implicit-consent flow.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.method !== 'POST' || ctx.path !== '/token' || !tamper || !ctx.body?.id_token) return;
  const change = tamper;
  tamper = null;
  const [header, payload] = ctx.body.id_token.split('.').slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  Object.assign(payload, change.set || {});
  for (const claim of change.unset || []) delete payload[claim];
  if (change.exp_offset !== undefined) {
    const now = Math.floor(Date.now() / 1000);
    payload.exp = now + change.exp_offset;
    payload.iat = Math.min(payload.iat, payload.exp - 60);
  }
  const key = change.foreign_key ? foreign : privateKey;
  if (change.foreign_key) header.kid = 'not-published';
  ctx.body = { ...ctx.body, id_token: await new jose.SignJWT(payload).setProtectedHeader(header).sign(key) };
});

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks).toString();
  return (req.headers['content-type'] || '').includes('json')
    ? JSON.parse(raw || '{}') : Object.fromEntries(new URLSearchParams(raw));
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function control(req, res) {
  const body = await readBody(req);
  if (req.url === '/__test/accounts') {
    const { sub, ...claims } = body;
    accounts.set(sub, claims);
    return send(res, 200, { ok: true });
  }
  if (req.url === '/__test/tamper') {
    tamper = body;
    return send(res, 200, { ok: true });
  }
  return send(res, 404, { error: 'unknown control' });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/html' });
    return res.end(`<form method="post" action="/interaction/${details.uid}/login">`
      + `<input name="sub"><input name="amr"><button>${details.prompt.name}</button></form>`);
  }
  const body = await readBody(req);
  if (!accounts.has(body.sub)) return send(res, 400, { error: 'unknown account' });
  const amr = (body.amr || 'pwd').split(',').filter(Boolean);
  return provider.interactionFinished(
    req, res, { login: { accountId: body.sub, amr } }, { mergeWithLastSubmission: false },
  );
}

const authentikPaths = [
  [/^\/application\/o\/authorize\/?(?=\?|$)/, '/auth'],
  [/^\/application\/o\/token\/?(?=\?|$)/, '/token'],
  [/^\/application\/o\/userinfo\/?(?=\?|$)/, '/me'],
  [/^\/application\/o\/[^/]+\/\.well-known\/openid-configuration(?=\?|$)/, '/.well-known/openid-configuration'],
  [/^\/application\/o\/[^/]+\/jwks\/?(?=\?|$)/, '/jwks'],
];

const handle = provider.callback();
server.on('request', (req, res) => {
  for (const [pattern, path] of authentikPaths) req.url = req.url.replace(pattern, path);
  const route = req.url.startsWith('/__test/') ? control
    : req.url.startsWith('/interaction/') ? interaction : null;
  if (!route) return handle(req, res);
  return route(req, res).catch((error) => send(res, 500, { error: String(error) }));
});
process.on('SIGTERM', () => process.exit(0));
console.log(JSON.stringify({ issuer, origin }));
