// The dashboard: sign in, then keep every panel current. Orders arrive on the live feed;
// health, positions, accounts, exposures and latency are re-read shortly after orders and
// every few seconds.

import { Api, AuthError, Feed } from "./api.js";
import { $, fill, h } from "./dom.js";
import { renderExposure } from "./views/exposure.js";
import { renderFollowers } from "./views/followers.js";
import { renderHealth } from "./views/health.js";
import { LatencyView } from "./views/latency.js";
import { renderLeaders } from "./views/leaders.js";
import { OrderStream } from "./views/orders.js";
import { renderPositions } from "./views/positions.js";

const TOKEN_KEY = "copytrade.token";
const REFRESH_MS = 5000;
const FEED_STATES = {
  connecting: ["idle", "connecting"],
  live: ["ok", "live"],
  reconnecting: ["warn", "reconnecting"],
  refused: ["bad", "refused"],
};

class Dashboard {
  constructor(api, session) {
    this.api = api;
    this.session = session;
    this.admin = session.role === "admin";
    this.orders = new OrderStream($("#orders"), api);
    this.latency = new LatencyView($("#latency"));
    this.followerNames = new Map();
    this.leaderNames = new Map();
    this.pending = new Map();
    this.timer = null;
    this.feed = null;
    this.onRefused = () => {};
  }

  async start() {
    for (const el of document.querySelectorAll("[data-admin-only]")) el.hidden = !this.admin;
    $("#who").textContent = this.admin ? "admin" : `follower: ${this.session.follower_name || this.session.follower_id}`;
    $("#orders-filter").addEventListener("submit", (event) => {
      event.preventDefault();
      const form = new FormData(event.target);
      this.orders.filter = {
        follower_id: form.get("follower_id") || "",
        symbol: (form.get("symbol") || "").trim(),
        status: form.get("status") || "",
      };
      this.guard(this.refreshOrders());
    });
    await this.refreshAccounts();
    await Promise.all([
      this.refreshHealth(), this.refreshPositions(), this.refreshOrders(), this.refreshExposure(),
      this.refreshLatency(),
    ]);
    const path = this.admin ? "/v1/orders/ws" : `/v1/followers/${this.session.follower_id}/orders/ws`;
    this.feed = new Feed(path, this.api.token, {
      onMessage: (message) => this.receive(message),
      // Orders published while the socket was down are in the history: read it again.
      onOpen: (reconnected) => reconnected && this.guard(this.refreshOrders()),
      onState: (state) => showFeedState(state),
      onRefused: () => this.onRefused(),
    });
    this.feed.start();
    // The exposure chart is drawn at its card's width: draw it again when that changes.
    this.onResize = () => this.soon("exposure", () => this.refreshExposure(), 150);
    window.addEventListener("resize", this.onResize);
    this.timer = setInterval(() => {
      this.guard(this.refreshHealth());
      this.soon("positions", () => this.refreshPositions(), 0);
      this.guard(this.refreshAccounts());
      this.guard(this.refreshLatency());
      this.soon("exposure", () => this.refreshExposure(), 0);
    }, REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
    if (this.onResize) window.removeEventListener("resize", this.onResize);
    for (const timer of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    if (this.feed) this.feed.stop();
  }

  receive(message) {
    this.orders.receive(message);
    if (message.type !== "order" && message.type !== "order_status") return;
    this.soon("positions", () => this.refreshPositions(), 300);
    if (message.type !== "order") return;
    this.soon("exposure", () => this.refreshExposure(), 300);
    this.soon("latency", () => this.refreshLatency(), 800);
    this.soon("accounts", () => this.refreshAccounts(), 1500);
  }

  /** Run `task` once after `ms`, however many times it is asked for meanwhile. */
  soon(name, task, ms) {
    if (this.pending.has(name)) return;
    this.pending.set(name, setTimeout(() => {
      this.pending.delete(name);
      this.guard(task());
    }, ms));
  }

  async guard(promise) {
    try {
      await promise;
    } catch (error) {
      if (error instanceof AuthError) this.onRefused();
      else console.warn(error);
    }
  }

  async refreshAccounts() {
    const [leaders, followers] = await Promise.all([
      this.admin ? this.api.get("/v1/dashboard/leaders") : Promise.resolve([]),
      this.api.get("/v1/dashboard/followers"),
    ]);
    this.leaderNames = new Map(leaders.map((leader) => [leader.id, leader.name]));
    this.followerNames = new Map(followers.map((follower) => [follower.id, follower.name]));
    this.orders.setNames(this.followerNames, this.leaderNames);
    if (this.admin) renderLeaders($("#leaders tbody"), leaders);
    renderFollowers($("#followers tbody"), followers, this.leaderNames);
    this.followerChoices(followers);
  }

  /** The orders filter's follower list, keeping the current choice. */
  followerChoices(followers) {
    const select = $("#orders-filter select[name=follower_id]");
    const chosen = select.value;
    fill(select, h("option", { value: "" }, "all"),
      followers.map((follower) => h("option", { value: follower.id }, follower.name)));
    select.value = chosen;
  }

  async refreshHealth() {
    renderHealth($("#health .health-items"), await this.api.get("/v1/dashboard/health"), this.leaderNames);
  }

  async refreshPositions() {
    const rows = await this.api.get("/v1/dashboard/positions");
    renderPositions($("#positions"), rows, this.followerNames, this.leaderNames);
  }

  async refreshOrders() {
    await this.orders.reload();
  }

  async refreshExposure() {
    const rows = await this.api.get("/v1/dashboard/exposure");
    renderExposure($("#exposure .chart"), rows, this.followerNames, this.leaderNames);
  }

  async refreshLatency() {
    this.latency.render(await this.api.get("/v1/dashboard/latency"));
  }
}

function showFeedState(state) {
  const [tone, text] = FEED_STATES[state] || ["idle", state];
  const pill = $("#feed-state");
  pill.className = `pill pill-${tone}`;
  pill.textContent = `feed ${text}`;
  pill.hidden = false;
}

let current = null;

function showLogin(message) {
  if (current) current.stop();
  current = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#board").hidden = true;
  $("#logout").hidden = true;
  $("#who").hidden = true;
  $("#feed-state").hidden = true;
  $("#login").hidden = false;
  const error = $("#login-error");
  error.textContent = message || "";
  error.hidden = !message;
  $("#login-token").value = "";
  $("#login-token").focus();
}

async function signIn(token) {
  const api = new Api(token);
  const session = await api.get("/v1/dashboard/session");
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#logout").hidden = false;
  $("#who").hidden = false;
  current = new Dashboard(api, session);
  current.onRefused = () => showLogin("The credential was refused: it was rotated or revoked.");
  await current.start();
}

async function trySignIn(token) {
  try {
    await signIn(token);
  } catch (error) {
    showLogin(error instanceof AuthError ? "Unknown token or key." : `Could not load: ${error.message}`);
  }
}

function boot() {
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("#login-token").value.trim();
    if (token) trySignIn(token);
  });
  $("#logout").addEventListener("click", () => showLogin());
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) trySignIn(stored);
  else showLogin();
}

boot();
