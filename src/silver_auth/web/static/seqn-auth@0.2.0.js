/**
 * SEQN Auth in the browser: sign-in on the hosted pages with PKCE (RFC 7636, S256), the code exchange,
 * the session JWT kept fresh with single-flight refresh, and sign-out that ends the session on the service.
 *
 * One dependency-free ES module: import it from npm (`@seqn/auth`) or straight from the auth host,
 * `https://auth.seqn.in/sdk/js/seqn-auth@0.2.0.js` (immutable, CORS-enabled).
 *
 * ```js
 * import { createSeqnAuth } from "https://auth.seqn.in/sdk/js/seqn-auth@0.2.0.js";
 * const auth = createSeqnAuth({
 *   authUrl: "https://auth.seqn.in",
 *   projectId: "prj_…",
 *   environment: "test",
 *   publishableKey: "pk_test_…",
 *   redirectUrl: "https://app.example.com/callback",
 * });
 * await auth.handleCallback();          // on the redirect URL's page: no-op elsewhere
 * if (!auth.user) await auth.signIn();  // navigates to the hosted sign-in page
 * const jwt = await auth.getToken();    // send as `Authorization: Bearer …` to your backend
 * ```
 *
 * Your backend must verify the JWT (JWKS at `{authUrl}/v1/projects/{projectId}/jwks.json`, or
 * `POST /v1/backend/sessions/verify`): this module decodes claims for display only.
 *
 * @module @seqn/auth
 */

/** The version of this module; the auth host serves it at `/sdk/js/seqn-auth@{VERSION}.js`. */
export const VERSION = "0.2.0";

const PROBLEM_TYPE_LOCAL = "about:blank";
const PENDING_MAX_AGE_MS = 60 * 60 * 1000;
const DEFAULT_REFRESH_MARGIN_SECONDS = 30;
const RETRY_MS = 15_000; // autoRefresh's next try after a refresh that failed without ending the session
const VERIFIER_BYTES = 48; // 64 base64url characters: RFC 7636 4.1 asks for 43 to 128

/**
 * An error of this module: an RFC 9457 problem the service answered, or a check made in the browser
 * (then `status` is 0). `reason` is the machine-readable cause: the problem's `reason` member
 * (`pkce-mismatch`, `refresh-token-reuse`, `revoked`, …) or this module's own (`state-mismatch`,
 * `network-error`, `no-session`, `invalid-response`, `hosted-page-error`).
 */
export class SeqnAuthError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, type?: string, title?: string, detail?: string, reason?: string,
   *   error?: string, problem?: Record<string, unknown> | null, cause?: unknown}} [fields]
   */
  constructor(message, fields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = "SeqnAuthError";
    /** @type {number} HTTP status of the problem; 0 when the error arose in the browser. */
    this.status = fields.status ?? 0;
    /** @type {string} The problem's `type` URI (`about:blank` for the browser's own errors). */
    this.type = fields.type ?? PROBLEM_TYPE_LOCAL;
    /** @type {string | undefined} */
    this.title = fields.title;
    /** @type {string | undefined} */
    this.detail = fields.detail;
    /** @type {string | undefined} */
    this.reason = fields.reason;
    /** @type {string | undefined} RFC 6749's `error` code (`invalid_grant`), when the problem has one. */
    this.error = fields.error;
    /** @type {Record<string, unknown> | null} The whole problem document, when there was one. */
    this.problem = fields.problem ?? null;
  }

  /** True when the session is gone for good (revoked, expired, reused token): sign in again. */
  get sessionEnded() {
    return this.status === 401 || (this.status === 400 && this.error === "invalid_grant");
  }
}

/**
 * The SeqnAuthError for a non-2xx answer: its RFC 9457 problem document when it has one.
 * @param {Response} response
 * @returns {Promise<SeqnAuthError>}
 */
export async function errorFromResponse(response) {
  /** @type {Record<string, unknown> | null} */
  let problem = null;
  try {
    const parsed = JSON.parse(await response.text());
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) problem = parsed;
  } catch {
    // not JSON (a proxy's HTML page): the status alone describes it
  }
  const text = (/** @type {string} */ name) =>
    problem && typeof problem[name] === "string" ? /** @type {string} */ (problem[name]) : undefined;
  const detail = text("detail");
  const title = text("title");
  return new SeqnAuthError(detail || title || `HTTP ${response.status}`, {
    status: response.status,
    type: text("type") ?? PROBLEM_TYPE_LOCAL,
    title,
    detail,
    reason: text("reason"),
    error: text("error"),
    problem,
  });
}

// --- PKCE, state, JWT decoding ------------------------------------------------------------------

/**
 * Base64url without padding (RFC 4648 5).
 * @param {Uint8Array} bytes
 */
export function base64url(bytes) {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * A random string of base64url characters (a subset of RFC 7636's unreserved set) from `byteCount`
 * random bytes of WebCrypto.
 * @param {number} byteCount
 * @param {Crypto} [webCrypto]
 */
export function randomString(byteCount, webCrypto = globalThis.crypto) {
  if (!webCrypto?.getRandomValues) {
    throw new SeqnAuthError("WebCrypto (crypto.getRandomValues) is not available", { reason: "no-webcrypto" });
  }
  return base64url(webCrypto.getRandomValues(new Uint8Array(byteCount)));
}

/**
 * A PKCE code verifier: 64 characters of `[A-Za-z0-9_-]` (RFC 7636 4.1).
 * @param {Crypto} [webCrypto]
 */
export function createVerifier(webCrypto = globalThis.crypto) {
  return randomString(VERIFIER_BYTES, webCrypto);
}

/**
 * The S256 code challenge of a verifier: BASE64URL(SHA-256(ASCII(verifier))) (RFC 7636 4.2).
 * @param {string} verifier
 * @param {Crypto} [webCrypto]
 * @returns {Promise<string>}
 */
export async function s256Challenge(verifier, webCrypto = globalThis.crypto) {
  if (!webCrypto?.subtle) {
    throw new SeqnAuthError("WebCrypto (crypto.subtle) is not available: is the page served over https?", {
      reason: "no-webcrypto",
    });
  }
  const digest = await webCrypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * The claims of a JWT, decoded and NOT verified: anyone can forge a token this accepts. Fine for
 * showing who is signed in; never for a decision a server makes (the server verifies the signature).
 * @param {string} jwt
 * @returns {SessionClaims}
 */
export function decodeJwt(jwt) {
  const parts = typeof jwt === "string" ? jwt.split(".") : [];
  if (parts.length !== 3) throw new SeqnAuthError("not a JWT", { reason: "invalid-response" });
  try {
    const padded = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(padded + "===".slice((padded.length + 3) % 4));
    const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    if (!claims || typeof claims !== "object") throw new TypeError("claims are not an object");
    return claims;
  } catch (cause) {
    throw new SeqnAuthError("the JWT's claims could not be read", { reason: "invalid-response", cause });
  }
}

/**
 * When (epoch ms, on this browser's clock) a JWT received at `receivedAt` expires. From the token's
 * own lifetime (`exp - iat`), so a browser clock that is off does not make every token look expired;
 * without `iat`, the server's `jwt_expires_at`. The service back-dates `iat` by a few seconds (for
 * verifiers whose clocks run behind), so this is a few seconds late: the refresh margin absorbs that.
 * @param {SessionClaims} claims
 * @param {string | undefined} expiresAtText the answer's `jwt_expires_at`
 * @param {number} receivedAt epoch ms
 */
export function localExpiry(claims, expiresAtText, receivedAt) {
  if (typeof claims.exp === "number" && typeof claims.iat === "number" && claims.exp > claims.iat) {
    return receivedAt + (claims.exp - claims.iat) * 1000;
  }
  const parsed = expiresAtText ? Date.parse(expiresAtText) : NaN;
  if (!Number.isNaN(parsed)) return parsed;
  if (typeof claims.exp === "number") return claims.exp * 1000;
  return receivedAt;
}

/**
 * When (epoch ms) a JWT expiring at `expiresAt` should be refreshed: `marginSeconds` before expiry, or
 * halfway through a token that lives less than twice the margin.
 * @param {number} receivedAt epoch ms
 * @param {number} expiresAt epoch ms
 * @param {number} [marginSeconds]
 */
export function refreshDueAt(receivedAt, expiresAt, marginSeconds = DEFAULT_REFRESH_MARGIN_SECONDS) {
  const lifetime = Math.max(0, expiresAt - receivedAt);
  return expiresAt - Math.min(marginSeconds * 1000, lifetime / 2);
}

// --- storage ----------------------------------------------------------------------------------------

/**
 * A Storage held in this page's memory only (gone on reload, invisible to other tabs).
 * @returns {StorageLike}
 */
export function memoryStorage() {
  const values = new Map();
  return {
    getItem: (key) => (values.has(key) ? values.get(key) : null),
    setItem: (key, value) => void values.set(key, String(value)),
    removeItem: (key) => void values.delete(key),
  };
}

/**
 * @param {StorageOption | undefined} option
 * @param {Platform} platform
 * @returns {StorageLike}
 */
function pickStorage(option, platform) {
  if (option && typeof option === "object") return option;
  if (option === "memory") return memoryStorage();
  const chosen = option === "session" ? platform.sessionStorage : platform.localStorage;
  if (!chosen) {
    throw new SeqnAuthError(`storage "${option ?? "local"}" is not available in this browser`, {
      reason: "no-storage",
    });
  }
  return chosen;
}

/**
 * @param {StorageLike} storage
 * @param {string} key
 */
function readJson(storage, key) {
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null; // a corrupt or unreadable entry is as good as none
  }
}

// --- the client -------------------------------------------------------------------------------------

/**
 * @typedef {object} SeqnAuthConfig
 * @property {string} authUrl The auth host, e.g. `https://auth.seqn.in` (no trailing slash needed).
 * @property {string} projectId The project's id, `prj_…`.
 * @property {"test" | "live"} environment The project environment the publishable key belongs to.
 * @property {string} publishableKey `pk_test_…` or `pk_live_…`. Public by design.
 * @property {string} redirectUrl This app's callback, exactly as registered on the project (the page's
 *   origin must also be one of the project's allowed origins).
 * @property {StorageOption} [storage] Where the session (token and JWT) is kept: `"local"` (default:
 *   localStorage, shared by the origin's tabs, survives reloads), `"session"` (sessionStorage: this tab
 *   only), `"memory"` (this page only), or any object with getItem/setItem/removeItem. See the README.
 * @property {number} [refreshMarginSeconds] Refresh this long before the JWT expires (default 30;
 *   a JWT that lives less than twice that is refreshed halfway through its life).
 * @property {boolean} [autoRefresh] Also refresh on a timer while a session exists (default false:
 *   getToken refreshes when called).
 * @property {(session: EndSessionInfo) => unknown | Promise<unknown>} [endSession] Also called by
 *   signOut before local state is cleared, for your backend's own sign-out work (its cookies, or a
 *   revocation with the secret key, `POST /v1/backend/sessions/{session_id}/revoke`). signOut ends the
 *   session on the service itself; this is for anything more.
 * @property {Partial<Platform>} [platform] Replace browser globals (tests, non-browser runtimes).
 */

/**
 * @typedef {{getItem(key: string): string | null, setItem(key: string, value: string): void,
 *   removeItem(key: string): void}} StorageLike
 * @typedef {"local" | "session" | "memory" | StorageLike} StorageOption
 */

/**
 * @typedef {object} SessionClaims The session JWT's claims (decoded, not verified).
 * @property {string} iss The auth host.
 * @property {string} sub The end-user's id (`usr_…`).
 * @property {string} sid The session's id (`sess_…`).
 * @property {string} aud The project's id.
 * @property {"test" | "live"} env
 * @property {number} exp Seconds since the epoch.
 * @property {number} [iat]
 */

/**
 * @typedef {object} SeqnUser Who is signed in, from the session JWT's claims: decoded, NOT verified.
 * @property {string} id The end-user's id (`sub`).
 * @property {string} sessionId (`sid`)
 * @property {string} projectId (`aud`)
 * @property {string} environment (`env`)
 * @property {SessionClaims} claims All of them.
 */

/**
 * @typedef {object} StoredSession
 * @property {string} sessionId
 * @property {string} userId
 * @property {string} sessionToken The one-use refresh token (rotated by every refresh).
 * @property {string} jwt
 * @property {number} receivedAt epoch ms, this browser's clock
 * @property {number} expiresAt epoch ms, this browser's clock
 */

/**
 * @typedef {object} EndSessionInfo
 * @property {string} sessionId
 * @property {string} userId
 * @property {string} jwt The last session JWT (it may have expired).
 */

/**
 * @typedef {object} CallbackResult
 * @property {"signed-in" | "signed-out"} kind
 * @property {SeqnUser | null} user
 * @property {string | undefined} returnTo What signIn was given as `returnTo`.
 */

/**
 * @typedef {object} Platform The browser globals this module uses.
 * @property {typeof fetch} fetch
 * @property {Crypto} crypto
 * @property {{href: string, assign(url: string): void}} location
 * @property {{state: unknown, replaceState(data: unknown, unused: string, url?: string): void} | undefined} history
 * @property {{request(name: string, callback: () => Promise<unknown>): Promise<unknown>} | undefined} locks
 * @property {StorageLike | undefined} localStorage
 * @property {StorageLike | undefined} sessionStorage
 * @property {() => number} now epoch ms
 * @property {(callback: () => void, ms: number) => unknown} setTimeout
 * @property {(handle: unknown) => void} clearTimeout
 * @property {((type: "storage", listener: (event: {key: string | null}) => void) => void) | undefined} addEventListener
 */

/** @returns {Platform} */
function browserPlatform() {
  const g = /** @type {any} */ (globalThis);
  const safe = (/** @type {() => any} */ get) => {
    try {
      return get();
    } catch {
      return undefined; // storage access throws when the browser blocks it (third-party, privacy modes)
    }
  };
  return {
    fetch: (...args) => g.fetch(...args),
    crypto: g.crypto,
    location: g.location,
    history: g.history,
    locks: g.navigator?.locks,
    localStorage: safe(() => g.localStorage),
    sessionStorage: safe(() => g.sessionStorage),
    now: () => Date.now(),
    setTimeout: (callback, ms) => g.setTimeout(callback, ms),
    clearTimeout: (handle) => g.clearTimeout(handle),
    addEventListener: g.addEventListener ? (type, listener) => g.addEventListener(type, listener) : undefined,
  };
}

/**
 * The SEQN Auth client of one project environment.
 * @param {SeqnAuthConfig} config
 */
export function createSeqnAuth(config) {
  for (const name of /** @type {const} */ (["authUrl", "projectId", "environment", "publishableKey", "redirectUrl"])) {
    if (typeof config?.[name] !== "string" || !config[name]) {
      throw new SeqnAuthError(`createSeqnAuth: ${name} is required`, { reason: "invalid-config" });
    }
  }
  if (config.environment !== "test" && config.environment !== "live") {
    throw new SeqnAuthError('createSeqnAuth: environment is "test" or "live"', { reason: "invalid-config" });
  }
  /** @type {Platform} */
  const platform = { ...browserPlatform(), ...config.platform };
  const authUrl = config.authUrl.replace(/\/+$/, "");
  const prefix = `seqn-auth:${config.projectId}:${config.environment}:`;
  const sessionKey = `${prefix}session`;
  const pendingPrefix = `${prefix}pending:`;
  const store = pickStorage(config.storage, platform);
  // The PKCE verifier must survive the trip to the hosted page and back, in this tab only.
  const pendingStore = platform.sessionStorage ?? memoryStorage();
  const margin = config.refreshMarginSeconds ?? DEFAULT_REFRESH_MARGIN_SECONDS;
  const hostedBase = `${authUrl}/p/${encodeURIComponent(config.projectId)}/${config.environment}`;
  /** @type {Set<(user: SeqnUser | null) => void>} */
  const listeners = new Set();
  /** @type {Promise<string | null> | null} */
  let inFlight = null;
  /** @type {unknown} */
  let timer = null;

  /** @returns {StoredSession | null} */
  const readSession = () => {
    const value = readJson(store, sessionKey);
    return value && typeof value.sessionToken === "string" && typeof value.jwt === "string" ? value : null;
  };

  /** @param {StoredSession | null} session */
  const userOf = (session) => {
    if (!session) return null;
    try {
      const claims = decodeJwt(session.jwt);
      return {
        id: claims.sub,
        sessionId: claims.sid,
        projectId: claims.aud,
        environment: claims.env,
        claims,
      };
    } catch {
      return null;
    }
  };

  const emit = () => {
    const user = userOf(readSession());
    for (const listener of [...listeners]) {
      try {
        listener(user);
      } catch (error) {
        // one listener's bug must not stop the others, nor the sign-in that changed the state
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  };

  /** @param {number} [atLeastMs] */
  const schedule = (atLeastMs = 0) => {
    if (!config.autoRefresh) return;
    if (timer !== null) platform.clearTimeout(timer);
    timer = null;
    const session = readSession();
    if (!session) return;
    const due = refreshDueAt(session.receivedAt, session.expiresAt, margin) - platform.now();
    timer = platform.setTimeout(() => {
      timer = null;
      // An ended session clears itself (onChange reports it); an outage is tried again a little later.
      getToken().catch(() => schedule(RETRY_MS));
    }, Math.max(atLeastMs, due, 0));
  };

  /** @param {StoredSession | null} session */
  const writeSession = (session) => {
    if (session) store.setItem(sessionKey, JSON.stringify(session));
    else store.removeItem(sessionKey);
    schedule();
    emit();
  };

  /**
   * The answer's JSON; null for a 204.
   * @param {string} path
   * @param {Record<string, unknown>} body
   */
  const post = async (path, body) => {
    let response;
    try {
      response = await platform.fetch(`${authUrl}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Publishable-Key": config.publishableKey },
        body: JSON.stringify(body),
        credentials: "omit",
        cache: "no-store",
      });
    } catch (cause) {
      throw new SeqnAuthError(
        "the auth service could not be reached (offline, or this origin is not an allowed origin)",
        { reason: "network-error", cause },
      );
    }
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return null;
    try {
      return await response.json();
    } catch (cause) {
      throw new SeqnAuthError("the auth service answered something that is not JSON", {
        status: response.status,
        reason: "invalid-response",
        cause,
      });
    }
  };

  /**
   * @param {any} answer `{session_id, user_id, session_token, jwt, jwt_expires_at}`
   * @returns {StoredSession}
   */
  const sessionFrom = (answer) => {
    if (!answer || typeof answer.session_token !== "string" || typeof answer.jwt !== "string") {
      throw new SeqnAuthError("the auth service's answer has no session", { reason: "invalid-response" });
    }
    const receivedAt = platform.now();
    const claims = decodeJwt(answer.jwt);
    return {
      sessionId: answer.session_id,
      userId: answer.user_id,
      sessionToken: answer.session_token,
      jwt: answer.jwt,
      receivedAt,
      expiresAt: localExpiry(claims, answer.jwt_expires_at, receivedAt),
    };
  };

  /** @param {StoredSession} session */
  const fresh = (session) => platform.now() < refreshDueAt(session.receivedAt, session.expiresAt, margin);

  /**
   * Runs `work` holding this project environment's refresh lock across the origin's tabs, when the
   * browser has Web Locks; else in this tab only (the in-flight promise already covers this tab).
   * @template T
   * @param {() => Promise<T>} work
   * @returns {Promise<T>}
   */
  const withRefreshLock = (work) => {
    const locks = platform.locks;
    if (!locks?.request) return work();
    return /** @type {Promise<T>} */ (locks.request(`${prefix}refresh`, work));
  };

  /**
   * @param {boolean} force
   * @returns {Promise<string | null>}
   */
  const refreshOnce = (force) => {
    const seen = readSession();
    return withRefreshLock(async () => {
      // Read again under the lock: another tab may have rotated the token while this one waited,
      // and presenting the old token now would revoke the session.
      const session = readSession();
      if (!session) return null;
      const rotatedMeanwhile = seen !== null && session.sessionToken !== seen.sessionToken;
      if (rotatedMeanwhile || (!force && fresh(session))) return session.jwt;
      let answer;
      try {
        answer = await post("/v1/client/sessions/refresh", { session_token: session.sessionToken });
      } catch (error) {
        if (error instanceof SeqnAuthError && error.sessionEnded && readSession()?.sessionToken === session.sessionToken) {
          writeSession(null); // revoked, expired or reused: this token will never work again
        }
        throw error;
      }
      const next = sessionFrom(answer);
      writeSession(next);
      return next.jwt;
    });
  };

  /**
   * The current session JWT, refreshed first when it is close to expiry (or when `forceRefresh`);
   * null when nobody is signed in. Callers at the same time share one refresh: each session token
   * works once, and a second refresh with the same token would revoke the session.
   * @param {{forceRefresh?: boolean}} [options]
   * @returns {Promise<string | null>}
   */
  const getToken = async (options = {}) => {
    const session = readSession();
    if (!session) return null;
    if (!options.forceRefresh && fresh(session) && !inFlight) return session.jwt;
    if (!inFlight) {
      inFlight = refreshOnce(Boolean(options.forceRefresh)).finally(() => {
        inFlight = null;
      });
    }
    return inFlight;
  };

  /** Drops PKCE entries of sign-ins that were abandoned long ago. */
  const sweepPending = () => {
    const storage = /** @type {any} */ (pendingStore);
    if (typeof storage.length !== "number" || typeof storage.key !== "function") return;
    const stale = [];
    for (let index = 0; index < storage.length; index += 1) {
      const key = storage.key(index);
      if (!key?.startsWith(pendingPrefix)) continue;
      const entry = readJson(pendingStore, key);
      if (!entry || platform.now() - entry.createdAt > PENDING_MAX_AGE_MS) stale.push(key);
    }
    for (const key of stale) pendingStore.removeItem(key);
  };

  /**
   * The hosted page's URL with the redirect fields.
   * @param {string} page
   * @param {Record<string, string>} params
   */
  const hostedUrl = (page, params) => `${hostedBase}/${page}?${new URLSearchParams(params)}`;

  /**
   * Makes a PKCE verifier and a state, keeps them in this tab's sessionStorage, and navigates to the
   * hosted sign-in (or sign-up) page. Resolves with the URL it navigated to.
   * @param {{signUp?: boolean, returnTo?: string, navigate?: boolean}} [options] `returnTo`: any string
   *   handleCallback gives back (where to go after sign-in); `navigate: false` only answers the URL.
   * @returns {Promise<string>}
   */
  const signIn = async (options = {}) => {
    sweepPending();
    const verifier = createVerifier(platform.crypto);
    const state = randomString(24, platform.crypto);
    const challenge = await s256Challenge(verifier, platform.crypto);
    pendingStore.setItem(
      pendingPrefix + state,
      JSON.stringify({
        kind: "sign-in",
        verifier,
        redirectUrl: config.redirectUrl,
        returnTo: options.returnTo,
        createdAt: platform.now(),
      }),
    );
    const url = hostedUrl(options.signUp ? "sign-up" : "sign-in", {
      redirect_url: config.redirectUrl,
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    if (options.navigate !== false) platform.location.assign(url);
    return url;
  };

  /** @param {URL} url */
  const stripCallbackParams = (url) => {
    if (!platform.history?.replaceState) return;
    if (url.href !== new URL(platform.location.href).href) return; // another URL than the address bar's
    const clean = new URL(url.href);
    for (const name of ["code", "state", "error", "error_description"]) clean.searchParams.delete(name);
    platform.history.replaceState(platform.history.state, "", clean.href);
  };

  /**
   * On the redirect URL's page: checks the returned `state`, exchanges the `code` with the verifier,
   * keeps the session, and removes code and state from the address bar (a reload must not present
   * the code again: a second redemption revokes the session). Resolves null when the URL is no
   * callback of this client (so it is safe to call on every page load).
   * @param {string} [href] Defaults to the page's URL.
   * @returns {Promise<CallbackResult | null>}
   */
  const handleCallback = async (href = platform.location.href) => {
    const url = new URL(href);
    const state = url.searchParams.get("state");
    const code = url.searchParams.get("code");
    const failure = url.searchParams.get("error");
    if (!state && !code && !failure) return null;
    const pending = state ? readJson(pendingStore, pendingPrefix + state) : null;
    if (state) pendingStore.removeItem(pendingPrefix + state); // one use, whatever happens next
    if (!pending) {
      if (!code) return null; // someone else's query parameters
      stripCallbackParams(url);
      throw new SeqnAuthError(
        "the sign-in came back with a state this tab did not send (an old link, another tab, or a forged " +
          "redirect): sign in again",
        { reason: "state-mismatch" },
      );
    }
    stripCallbackParams(url);
    if (failure) {
      throw new SeqnAuthError(url.searchParams.get("error_description") || failure, {
        reason: "hosted-page-error",
        error: failure,
      });
    }
    if (pending.kind === "sign-out") {
      return { kind: "signed-out", user: null, returnTo: pending.returnTo };
    }
    if (!code) throw new SeqnAuthError("the sign-in came back without a code", { reason: "no-code" });
    const answer = await post("/v1/client/sessions/exchange", {
      code,
      redirect_url: pending.redirectUrl,
      code_verifier: pending.verifier,
    });
    const session = sessionFrom(answer);
    writeSession(session);
    return { kind: "signed-in", user: userOf(session), returnTo: pending.returnTo };
  };

  /**
   * Signs out: ends the session on the service with its current session token
   * (`POST /v1/client/sessions/sign-out`: its JWTs verify as revoked from then on, and it is the
   * hosted pages' session of this browser too, so the next signIn asks for credentials), calls
   * `endSession` if you gave one, and clears this client's session. Local state is cleared whatever
   * happens; a failure (offline, a refused key or origin) is thrown afterwards, and the session may
   * then still be live on the service. With `redirect: true` it then navigates to the hosted sign-out
   * page, which also ends whatever session the browser holds there now, and comes back to the redirect
   * URL, where handleCallback answers `{kind: "signed-out"}`. `revoke: false` skips the service call
   * (the session token is then only forgotten here).
   * @param {{redirect?: boolean, revoke?: boolean, returnTo?: string,
   *   endSession?: (session: EndSessionInfo) => unknown | Promise<unknown>}} [options]
   * @returns {Promise<string | null>} The hosted sign-out URL when it navigated there, else null.
   */
  const signOut = async (options = {}) => {
    const endSession = options.endSession ?? config.endSession;
    /** @type {unknown[]} */
    const failures = [];
    const attempt = async (/** @type {() => unknown} */ work) => {
      try {
        await work();
      } catch (error) {
        failures.push(error);
      }
    };
    // The token presented must be the current one (an old one ends nothing): wait for this tab's
    // refresh, and hold the lock other tabs refresh under.
    if (inFlight) await inFlight.catch(() => null);
    await withRefreshLock(async () => {
      const session = readSession();
      if (session && options.revoke !== false) {
        await attempt(() => post("/v1/client/sessions/sign-out", { session_token: session.sessionToken }));
      }
      if (session && endSession) {
        await attempt(() => endSession({ sessionId: session.sessionId, userId: session.userId, jwt: session.jwt }));
      }
      if (readSession()) writeSession(null);
    });
    if (failures.length) throw failures[0];
    if (options.redirect !== true) return null;
    const state = randomString(24, platform.crypto);
    pendingStore.setItem(
      pendingPrefix + state,
      JSON.stringify({ kind: "sign-out", returnTo: options.returnTo, createdAt: platform.now() }),
    );
    const url = hostedUrl("sign-out", { redirect_url: config.redirectUrl, state });
    platform.location.assign(url);
    return url;
  };

  /**
   * Calls `listener` with the user (or null) whenever the session changes: sign-in, refresh,
   * sign-out, a session that ended, and the same in another tab (with shared storage).
   * @param {(user: SeqnUser | null) => void} listener
   * @returns {() => void} Unsubscribes.
   */
  const onChange = (listener) => {
    listeners.add(listener);
    return () => listeners.delete(listener);
  };

  platform.addEventListener?.("storage", (event) => {
    if (event.key === sessionKey || event.key === null) {
      schedule();
      emit();
    }
  });
  schedule();

  return {
    signIn,
    handleCallback,
    getToken,
    signOut,
    onChange,
    /**
     * Who is signed in, from the session JWT's claims: decoded, NOT verified (display only). Null
     * when nobody is. Still set while the JWT is expired but the session can be refreshed.
     * @type {SeqnUser | null}
     */
    get user() {
      return userOf(readSession());
    },
    /**
     * The session's ids and expiry as stored (no token), or null.
     * @type {{sessionId: string, userId: string, expiresAt: number} | null}
     */
    get session() {
      const session = readSession();
      return session
        ? { sessionId: session.sessionId, userId: session.userId, expiresAt: session.expiresAt }
        : null;
    },
    /** Stops the auto-refresh timer and drops listeners (a single-page app's teardown). */
    close() {
      if (timer !== null) platform.clearTimeout(timer);
      timer = null;
      listeners.clear();
    },
  };
}

/** @typedef {ReturnType<typeof createSeqnAuth>} SeqnAuth */
