// The service's API as the page uses it: REST with a bearer header, and order feeds over
// websockets. Browsers cannot set headers on a websocket, and a credential in a URL ends in
// access logs, so the feed sends it as a subprotocol: ["copytrade.v1", "bearer.<base64url>"].

export class AuthError extends Error {}

export class Api {
  constructor(token) {
    this.token = token;
  }

  /** GET a /v1 path as JSON; a 401 (unknown or revoked credential) throws AuthError. */
  async get(path) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${this.token}` },
      cache: "no-store",
      credentials: "omit",
    });
    if (response.status === 401) throw new AuthError("unknown or revoked credential");
    if (!response.ok) throw new Error(`GET ${path} answered ${response.status}`);
    return response.json();
  }
}

export const SUBPROTOCOL = "copytrade.v1";

/** The credential as a subprotocol: an HTTP token, whatever characters the credential holds. */
export function bearerSubprotocol(token) {
  const bytes = new TextEncoder().encode(token);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return "bearer." + btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const POLICY_VIOLATION = 1008;

/**
 * One order feed, kept open: reconnects with exponential backoff and jitter, except when the
 * server refuses the credential (1008), which ends it.
 */
export class Feed {
  constructor(path, token, { onMessage, onOpen, onState, onRefused }) {
    this.path = path;
    this.token = token;
    this.handlers = { onMessage, onOpen, onState, onRefused };
    this.delay = 500;
    this.opened = 0;
    this.socket = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.socket = null;
  }

  connect() {
    const url = new URL(this.path, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    this.handlers.onState(this.opened ? "reconnecting" : "connecting");
    const socket = new WebSocket(url, [SUBPROTOCOL, bearerSubprotocol(this.token)]);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.delay = 500;
      this.handlers.onState("live");
      this.handlers.onOpen(this.opened++ > 0);
    });
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handlers.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (event.code === POLICY_VIOLATION) {
        this.handlers.onState("refused");
        this.handlers.onRefused();
        return;
      }
      this.handlers.onState("reconnecting");
      const wait = this.delay * (0.5 + Math.random());
      this.delay = Math.min(this.delay * 2, 10000);
      this.timer = setTimeout(() => this.connect(), wait);
    });
  }
}
