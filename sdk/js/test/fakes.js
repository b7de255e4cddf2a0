// Small stand-ins for the browser globals the module reads, for the unit tests only: a scripted fetch,
// a Storage, the address bar, Web Locks and a clock the test moves. WebCrypto is Node's own.

/** A Storage with the Web Storage API's shape (length and key() included). */
export class FakeStorage {
  constructor() {
    this.values = new Map();
  }
  get length() {
    return this.values.size;
  }
  key(index) {
    return [...this.values.keys()][index] ?? null;
  }
  getItem(key) {
    return this.values.has(key) ? this.values.get(key) : null;
  }
  setItem(key, value) {
    this.values.set(key, String(value));
  }
  removeItem(key) {
    this.values.delete(key);
  }
}

/** navigator.locks: exclusive locks by name, granted in request order. */
export class FakeLocks {
  constructor() {
    this.tails = new Map();
    this.granted = 0;
  }
  request(name, callback) {
    const previous = this.tails.get(name) ?? Promise.resolve();
    const run = previous.then(() => {
      this.granted += 1;
      return callback();
    });
    this.tails.set(
      name,
      run.catch(() => {}),
    );
    return run;
  }
}

/** A JWT with these claims; the signature is junk (the module never verifies one). */
export function fakeJwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "EdDSA", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

export function problemResponse(status, problem) {
  return new Response(JSON.stringify(problem), {
    status,
    headers: { "Content-Type": "application/problem+json" },
  });
}

/**
 * A fetch that answers from `script` (one function per expected call, in order) and records every
 * request. A call with no script left fails the test.
 */
export function scriptedFetch(script = []) {
  const calls = [];
  const fetch = async (url, init) => {
    const call = { url, init, body: init?.body ? JSON.parse(init.body) : undefined };
    calls.push(call);
    const next = script.shift();
    if (!next) throw new Error(`unexpected fetch ${url}`);
    return next(call);
  };
  return { fetch, calls, script };
}

/** Everything the module reads from the browser, with the clock at `now` (ms). */
export function fakePlatform({ fetch, now = 1_700_000_000_000, locks, localStorage, href } = {}) {
  const clock = { now, timers: [] };
  const location = {
    href: href ?? "https://app.example.com/",
    assigned: [],
    assign(url) {
      this.assigned.push(url);
    },
  };
  const history = {
    state: null,
    replaced: [],
    replaceState(state, unused, url) {
      this.replaced.push(url);
      location.href = url;
    },
  };
  return {
    clock,
    platform: {
      fetch,
      crypto: globalThis.crypto,
      location,
      history,
      locks,
      localStorage: localStorage ?? new FakeStorage(),
      sessionStorage: new FakeStorage(),
      now: () => clock.now,
      setTimeout: (callback, ms) => clock.timers.push({ callback, ms, cleared: false }) - 1,
      clearTimeout: (handle) => {
        if (clock.timers[handle]) clock.timers[handle].cleared = true;
      },
      addEventListener: undefined,
    },
  };
}
