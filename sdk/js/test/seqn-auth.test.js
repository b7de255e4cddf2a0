import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  SeqnAuthError,
  VERSION,
  createSeqnAuth,
  createVerifier,
  decodeJwt,
  errorFromResponse,
  localExpiry,
  refreshDueAt,
  s256Challenge,
} from "../seqn-auth.js";
import { FakeLocks, FakeStorage, fakeJwt, fakePlatform, problemResponse, scriptedFetch } from "./fakes.js";

const CONFIG = {
  authUrl: "https://auth.example.com/",
  projectId: "prj_1",
  environment: "test",
  publishableKey: "pk_test_abc",
  redirectUrl: "https://app.example.com/callback",
};
const SESSION_KEY = "seqn-auth:prj_1:test:session";
const LIFETIME = 600; // seconds

let issued = 0;
function sessionAnswer(nowMs) {
  issued += 1;
  const iat = Math.floor(nowMs / 1000) - 3600; // the server's clock an hour behind: only exp - iat counts
  const claims = { iss: "https://auth.example.com", sub: "usr_1", sid: "sess_1", aud: "prj_1", env: "test", iat, exp: iat + LIFETIME, n: issued };
  return {
    session_id: "sess_1",
    user_id: "usr_1",
    session_token: `tok_${issued}`,
    jwt: fakeJwt(claims),
    jwt_expires_at: new Date((iat + LIFETIME) * 1000).toISOString(),
  };
}
const ok = (body) => new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });

/** A client already signed in (a session stored as handleCallback would have). */
function signedIn({ locks, localStorage, script = [], ...options } = {}) {
  const fetcher = scriptedFetch(script);
  const { platform, clock } = fakePlatform({ fetch: fetcher.fetch, locks, localStorage });
  const answer = sessionAnswer(clock.now);
  if (!platform.localStorage.getItem(SESSION_KEY)) {
    platform.localStorage.setItem(
      SESSION_KEY,
      JSON.stringify({
        sessionId: answer.session_id,
        userId: answer.user_id,
        sessionToken: answer.session_token,
        jwt: answer.jwt,
        receivedAt: clock.now,
        expiresAt: clock.now + LIFETIME * 1000,
      }),
    );
  }
  const auth = createSeqnAuth({ ...CONFIG, ...options, platform });
  return { auth, platform, clock, fetcher };
}

describe("PKCE", () => {
  test("the verifier is 64 unreserved characters, different every time", () => {
    const seen = new Set();
    for (let i = 0; i < 50; i += 1) {
      const verifier = createVerifier();
      assert.match(verifier, /^[A-Za-z0-9_-]{64}$/);
      assert.ok(verifier.length >= 43 && verifier.length <= 128);
      seen.add(verifier);
    }
    assert.equal(seen.size, 50);
  });

  test("S256 matches RFC 7636 appendix B", async () => {
    assert.equal(
      await s256Challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
      "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
  });
});

describe("signIn and handleCallback", () => {
  test("signIn sends a challenge and state, and keeps the verifier in this tab's sessionStorage", async () => {
    const { platform } = fakePlatform({ fetch: scriptedFetch().fetch });
    const auth = createSeqnAuth({ ...CONFIG, platform });
    const url = new URL(await auth.signIn());
    assert.equal(url.origin + url.pathname, "https://auth.example.com/p/prj_1/test/sign-in");
    assert.deepEqual(platform.location.assigned, [url.href]);
    const params = url.searchParams;
    assert.equal(params.get("redirect_url"), CONFIG.redirectUrl);
    assert.equal(params.get("code_challenge_method"), "S256");
    assert.match(params.get("state"), /^[A-Za-z0-9_-]{32}$/);
    const pending = JSON.parse(platform.sessionStorage.getItem(`seqn-auth:prj_1:test:pending:${params.get("state")}`));
    assert.equal(await s256Challenge(pending.verifier), params.get("code_challenge"));
    assert.equal(platform.localStorage.length, 0, "nothing of the sign-in in shared storage");

    const up = new URL(await auth.signIn({ signUp: true, navigate: false }));
    assert.equal(up.pathname, "/p/prj_1/test/sign-up");
    assert.notEqual(up.searchParams.get("state"), params.get("state"));
  });

  test("the callback exchanges the code with the verifier, once, and cleans the address bar", async () => {
    const fetcher = scriptedFetch([(call) => ok(sessionAnswer(0))]);
    const { platform } = fakePlatform({ fetch: fetcher.fetch });
    const auth = createSeqnAuth({ ...CONFIG, platform });
    const seen = [];
    auth.onChange((user) => seen.push(user?.id ?? null));
    const state = new URL(await auth.signIn({ returnTo: "/billing" })).searchParams.get("state");
    const pendingKey = `seqn-auth:prj_1:test:pending:${state}`;
    const verifier = JSON.parse(platform.sessionStorage.getItem(pendingKey)).verifier;
    platform.location.href = `${CONFIG.redirectUrl}?code=the-code&state=${state}&tab=2`;

    const result = await auth.handleCallback();
    assert.equal(result.kind, "signed-in");
    assert.equal(result.user.id, "usr_1");
    assert.equal(result.returnTo, "/billing");
    const [call] = fetcher.calls;
    assert.equal(call.url, "https://auth.example.com/v1/client/sessions/exchange");
    assert.equal(call.init.headers["X-Publishable-Key"], "pk_test_abc");
    assert.equal(call.init.credentials, "omit");
    assert.deepEqual(call.body, { code: "the-code", redirect_url: CONFIG.redirectUrl, code_verifier: verifier });
    assert.equal(platform.sessionStorage.getItem(pendingKey), null, "the verifier is gone");
    assert.deepEqual(platform.history.replaced, [`${CONFIG.redirectUrl}?tab=2`]);
    assert.deepEqual(seen, ["usr_1"]);
    assert.equal(auth.user.sessionId, "sess_1");

    // The same callback again (a reload, a copied link): refused here, never sent to the service.
    await assert.rejects(auth.handleCallback(`${CONFIG.redirectUrl}?code=the-code&state=${state}`), {
      name: "SeqnAuthError",
      reason: "state-mismatch",
      status: 0,
    });
    assert.equal(fetcher.calls.length, 1);
  });

  test("a state this tab never sent is refused before any exchange", async () => {
    const fetcher = scriptedFetch();
    const { platform } = fakePlatform({ fetch: fetcher.fetch, href: `${CONFIG.redirectUrl}?code=c&state=forged` });
    const auth = createSeqnAuth({ ...CONFIG, platform });
    await auth.signIn({ navigate: false });
    await assert.rejects(auth.handleCallback(), (error) => error instanceof SeqnAuthError && error.reason === "state-mismatch");
    assert.equal(fetcher.calls.length, 0);
    assert.equal(auth.user, null);
  });

  test("a page that is no callback is left alone", async () => {
    const { platform } = fakePlatform({ fetch: scriptedFetch().fetch, href: "https://app.example.com/?state=theirs" });
    const auth = createSeqnAuth({ ...CONFIG, platform });
    assert.equal(await auth.handleCallback(), null);
    assert.equal(await auth.handleCallback("https://app.example.com/page"), null);
    assert.deepEqual(platform.history.replaced, []);
  });

  test("a refused exchange throws the problem", async () => {
    const problem = {
      type: "https://docs.seqn.in/problems/invalid-grant",
      title: "The code or session token is not valid",
      status: 400,
      detail: "the PKCE code verifier does not match",
      error: "invalid_grant",
      reason: "pkce-mismatch",
    };
    const fetcher = scriptedFetch([() => problemResponse(400, problem)]);
    const { platform } = fakePlatform({ fetch: fetcher.fetch });
    const auth = createSeqnAuth({ ...CONFIG, platform });
    const state = new URL(await auth.signIn()).searchParams.get("state");
    await assert.rejects(auth.handleCallback(`${CONFIG.redirectUrl}?code=c&state=${state}`), {
      name: "SeqnAuthError",
      status: 400,
      type: problem.type,
      reason: "pkce-mismatch",
      error: "invalid_grant",
      detail: problem.detail,
      message: problem.detail,
    });
    assert.equal(auth.user, null);
  });
});

describe("getToken", () => {
  test("refreshDueAt: the margin before expiry, halfway for short-lived tokens", () => {
    assert.equal(refreshDueAt(0, 600_000), 570_000);
    assert.equal(refreshDueAt(0, 600_000, 60), 540_000);
    assert.equal(refreshDueAt(0, 60_000), 30_000);
    assert.equal(refreshDueAt(0, 15_000), 7_500);
    assert.equal(refreshDueAt(10_000, 5_000), 5_000);
  });

  test("localExpiry reads the token's own lifetime, whatever the browser's clock", () => {
    assert.equal(localExpiry({ iat: 100, exp: 160 }, "1970-01-01T00:02:40Z", 5_000), 65_000);
    assert.equal(localExpiry({ exp: 160 }, "1970-01-01T00:02:40Z", 5_000), 160_000);
    assert.equal(localExpiry({ exp: 160 }, undefined, 5_000), 160_000);
  });

  test("a fresh JWT is answered as it is; one near expiry is refreshed with the current token", async () => {
    const { auth, clock, fetcher, platform } = signedIn({ script: [(call) => ok(sessionAnswer(clock.now))] });
    const first = await auth.getToken();
    assert.equal(decodeJwt(first).sub, "usr_1");
    clock.now += (LIFETIME - 31) * 1000;
    assert.equal(await auth.getToken(), first);
    assert.equal(fetcher.calls.length, 0);

    clock.now += 2000; // inside the 30 s margin
    const next = await auth.getToken();
    assert.notEqual(next, first);
    assert.equal(fetcher.calls.length, 1);
    const stored = JSON.parse(platform.localStorage.getItem(SESSION_KEY));
    assert.equal(fetcher.calls[0].url, "https://auth.example.com/v1/client/sessions/refresh");
    assert.notEqual(fetcher.calls[0].body.session_token, stored.sessionToken, "rotated");
    assert.equal(stored.jwt, next);
    assert.equal(await auth.getToken(), next);
  });

  test("autoRefresh refreshes on a timer before expiry, and tries again after an outage", async () => {
    const { auth, clock, fetcher } = signedIn({
      autoRefresh: true,
      script: [() => Promise.reject(new TypeError("Failed to fetch")), () => ok(sessionAnswer(clock.now))],
    });
    const live = () => clock.timers.filter((timer) => !timer.cleared);
    assert.equal(live().length, 1);
    assert.equal(live()[0].ms, (LIFETIME - 30) * 1000);
    const fire = async () => {
      const [timer] = live();
      timer.cleared = true;
      timer.callback();
      await new Promise((resolve) => setImmediate(resolve));
    };
    clock.now += (LIFETIME - 30) * 1000;
    await fire();
    assert.equal(fetcher.calls.length, 1);
    assert.ok(auth.user, "kept through the outage");
    assert.equal(live().length, 1);
    assert.equal(live()[0].ms, 15_000);
    clock.now += 15_000;
    await fire();
    assert.equal(fetcher.calls.length, 2);
    assert.equal(live().length, 1, "the next refresh is scheduled");
    assert.equal(live()[0].ms, (LIFETIME - 30) * 1000);
    auth.close();
    assert.equal(live().length, 0);
  });

  test("concurrent callers share one refresh", async () => {
    let release;
    const gate = new Promise((resolve) => (release = resolve));
    const { auth, clock, fetcher } = signedIn({
      script: [async () => (await gate, ok(sessionAnswer(clock.now)))],
    });
    clock.now += LIFETIME * 1000;
    const waiting = [auth.getToken(), auth.getToken(), auth.getToken({ forceRefresh: true })];
    release();
    const tokens = await Promise.all(waiting);
    assert.equal(new Set(tokens).size, 1);
    assert.equal(fetcher.calls.length, 1);
  });

  test("two tabs sharing storage and Web Locks refresh once: the second finds the token rotated", async () => {
    const locks = new FakeLocks();
    const shared = new FakeStorage();
    const one = signedIn({ locks, localStorage: shared, script: [(call) => ok(sessionAnswer(0))] });
    const two = signedIn({ locks, localStorage: shared });
    one.clock.now += LIFETIME * 1000;
    two.clock.now += LIFETIME * 1000;
    const [a, b] = await Promise.all([one.auth.getToken(), two.auth.getToken()]);
    assert.equal(a, b);
    assert.equal(one.fetcher.calls.length + two.fetcher.calls.length, 1);
    assert.equal(locks.granted, 2);
  });

  test("an ended session is cleared and reported; a network failure keeps it", async () => {
    const { auth, clock, fetcher } = signedIn({
      script: [
        () => Promise.reject(new TypeError("Failed to fetch")),
        () =>
          problemResponse(401, {
            type: "https://docs.seqn.in/problems/unauthorized",
            title: "Authentication required",
            status: 401,
            detail: "this session token was already used once",
            reason: "refresh-token-reuse",
          }),
      ],
    });
    const seen = [];
    auth.onChange((user) => seen.push(user));
    clock.now += LIFETIME * 1000;
    await assert.rejects(auth.getToken(), { reason: "network-error", status: 0 });
    assert.ok(auth.user, "kept: the token may still be good");
    const error = await auth.getToken().catch((caught) => caught);
    assert.ok(error instanceof SeqnAuthError);
    assert.equal(error.status, 401);
    assert.equal(error.reason, "refresh-token-reuse");
    assert.ok(error.sessionEnded);
    assert.equal(auth.user, null);
    assert.deepEqual(seen, [null]);
    assert.equal(await auth.getToken(), null);
    assert.equal(fetcher.calls.length, 2);
  });
});

describe("storage", () => {
  test("memory and session storage keep the session out of localStorage", async () => {
    for (const [storage, where] of [["memory", null], ["session", "sessionStorage"]]) {
      const fetcher = scriptedFetch([() => ok(sessionAnswer(0))]);
      const { platform } = fakePlatform({ fetch: fetcher.fetch });
      const auth = createSeqnAuth({ ...CONFIG, storage, platform });
      const state = new URL(await auth.signIn()).searchParams.get("state");
      await auth.handleCallback(`${CONFIG.redirectUrl}?code=c&state=${state}`);
      assert.equal(auth.user.id, "usr_1", storage);
      assert.equal(platform.localStorage.length, 0, storage);
      assert.equal(platform.sessionStorage.getItem(SESSION_KEY) !== null, where === "sessionStorage", storage);
    }
  });

  test("a change another tab makes to shared storage is reported here", () => {
    const shared = new FakeStorage();
    const { platform } = fakePlatform({ fetch: scriptedFetch().fetch, localStorage: shared });
    let storageListener;
    platform.addEventListener = (type, listener) => (storageListener = listener);
    const auth = createSeqnAuth({ ...CONFIG, platform });
    const seen = [];
    auth.onChange((user) => seen.push(user?.id ?? null));
    signedIn({ localStorage: shared }); // the other tab signs in
    storageListener({ key: SESSION_KEY });
    shared.removeItem(SESSION_KEY); // and out
    storageListener({ key: SESSION_KEY });
    storageListener({ key: "someone-else" });
    assert.deepEqual(seen, ["usr_1", null]);
  });
});

const noContent = () => new Response(null, { status: 204 });

describe("signOut", () => {
  test("ends the session on the service with the current token, then clears it, without navigating", async () => {
    const { auth, platform, fetcher } = signedIn({ script: [noContent] });
    const token = JSON.parse(platform.localStorage.getItem(SESSION_KEY)).sessionToken;
    const seen = [];
    auth.onChange((user) => seen.push(user));
    assert.equal(await auth.signOut(), null);
    assert.equal(fetcher.calls.length, 1);
    assert.equal(fetcher.calls[0].url, "https://auth.example.com/v1/client/sessions/sign-out");
    assert.equal(fetcher.calls[0].init.method, "POST");
    assert.equal(fetcher.calls[0].init.headers["X-Publishable-Key"], CONFIG.publishableKey);
    assert.equal(fetcher.calls[0].init.credentials, "omit");
    assert.deepEqual(fetcher.calls[0].body, { session_token: token });
    assert.equal(auth.user, null);
    assert.equal(platform.localStorage.getItem(SESSION_KEY), null);
    assert.deepEqual(seen, [null]);
    assert.deepEqual(platform.location.assigned, []);

    assert.equal(await auth.signOut(), null, "signed out already: nothing to send");
    assert.equal(fetcher.calls.length, 1);
  });

  test("presents the token a refresh in flight rotates to, not the one it replaced", async () => {
    for (const locks of [new FakeLocks(), undefined]) {
      let release;
      const gate = new Promise((resolve) => (release = resolve));
      let answered;
      const { auth, clock, fetcher } = signedIn({
        locks,
        script: [async () => (await gate, ok((answered = sessionAnswer(clock.now)))), noContent],
      });
      clock.now += LIFETIME * 1000;
      const refreshing = auth.getToken();
      const signingOut = auth.signOut();
      release();
      await refreshing;
      await signingOut;
      assert.equal(fetcher.calls.length, 2);
      assert.equal(fetcher.calls[1].url, "https://auth.example.com/v1/client/sessions/sign-out");
      assert.equal(fetcher.calls[1].body.session_token, answered.session_token);
      assert.notEqual(fetcher.calls[0].body.session_token, answered.session_token);
      assert.equal(auth.user, null);
    }
  });

  test("with redirect: true, also opens the hosted sign-out page; endSession is called too", async () => {
    const { auth, platform, fetcher } = signedIn({ script: [noContent] });
    const ended = [];
    const url = new URL(
      await auth.signOut({ redirect: true, endSession: (info) => ended.push(info), returnTo: "/bye" }),
    );
    assert.equal(fetcher.calls.length, 1);
    assert.equal(ended.length, 1);
    assert.equal(ended[0].sessionId, "sess_1");
    assert.equal(ended[0].userId, "usr_1");
    assert.equal(auth.user, null);
    assert.equal(platform.localStorage.getItem(SESSION_KEY), null);
    assert.equal(url.origin + url.pathname, "https://auth.example.com/p/prj_1/test/sign-out");
    assert.equal(url.searchParams.get("redirect_url"), CONFIG.redirectUrl);
    assert.deepEqual(platform.location.assigned, [url.href]);

    const back = await auth.handleCallback(`${CONFIG.redirectUrl}?state=${url.searchParams.get("state")}`);
    assert.deepEqual(back, { kind: "signed-out", user: null, returnTo: "/bye" });
  });

  test("the configured endSession runs after the service call", async () => {
    const order = [];
    const { auth, fetcher } = signedIn({
      script: [() => (order.push("service"), noContent())],
      endSession: () => order.push("endSession"),
    });
    await auth.signOut();
    assert.deepEqual(order, ["service", "endSession"]);
    assert.equal(fetcher.calls.length, 1);
  });

  test("a failure still clears local state, then is thrown, and nothing navigates", async () => {
    const { auth, platform } = signedIn({ script: [() => Promise.reject(new TypeError("Failed to fetch"))] });
    const ended = [];
    await assert.rejects(
      auth.signOut({ redirect: true, endSession: (info) => ended.push(info) }),
      { reason: "network-error" },
    );
    assert.equal(ended.length, 1, "endSession runs although the service call failed");
    assert.equal(auth.user, null);
    assert.deepEqual(platform.location.assigned, []);

    const refused = signedIn({
      script: [
        () => problemResponse(401, { type: "https://docs.seqn.in/problems/unauthorized", title: "Authentication required", status: 401, detail: "no key" }),
      ],
    });
    await assert.rejects(refused.auth.signOut(), { status: 401 });
    assert.equal(refused.auth.user, null);

    const failing = signedIn({ script: [noContent] });
    await assert.rejects(failing.auth.signOut({ endSession: () => Promise.reject(new Error("down")) }), /down/);
    assert.equal(failing.auth.user, null);
  });

  test("revoke: false only forgets the session here", async () => {
    const { auth, fetcher, platform } = signedIn();
    assert.equal(await auth.signOut({ revoke: false }), null);
    assert.equal(fetcher.calls.length, 0);
    assert.equal(auth.user, null);
    assert.deepEqual(platform.location.assigned, []);
  });
});

describe("errors", () => {
  test("a problem document becomes a SeqnAuthError with its members", async () => {
    const error = await errorFromResponse(
      problemResponse(403, { type: "https://docs.seqn.in/problems/forbidden", title: "Not allowed", status: 403, detail: "origin" }),
    );
    assert.ok(error instanceof Error && error instanceof SeqnAuthError);
    assert.equal(error.name, "SeqnAuthError");
    assert.equal(error.status, 403);
    assert.equal(error.type, "https://docs.seqn.in/problems/forbidden");
    assert.equal(error.title, "Not allowed");
    assert.equal(error.detail, "origin");
    assert.equal(error.reason, undefined);
    assert.equal(error.sessionEnded, false);
  });

  test("an answer that is no problem keeps its status", async () => {
    const error = await errorFromResponse(new Response("<html>Bad gateway</html>", { status: 502 }));
    assert.equal(error.status, 502);
    assert.equal(error.type, "about:blank");
    assert.equal(error.message, "HTTP 502");
    assert.equal(error.problem, null);
  });

  test("a configuration mistake is refused at once", () => {
    assert.throws(() => createSeqnAuth({ ...CONFIG, redirectUrl: "" }), { reason: "invalid-config" });
    assert.throws(() => createSeqnAuth({ ...CONFIG, environment: "prod" }), { reason: "invalid-config" });
  });
});

test("VERSION is the package's version", () => {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  assert.equal(VERSION, manifest.version);
  assert.deepEqual(manifest.dependencies ?? {}, {});
});
