// The mirrored orders, grouped by the leader fill that produced them (fill -> orders), newest
// fill first. History comes from /v1/dashboard/orders (filtered by follower, symbol and status,
// a page at a time: "Older orders" reads the next page), then the feed adds matching orders live.
// A live order in version 2 of the order message carries no explanation and no created_at:
// what its fill row shows (the leader's trade, the fill's facts, when) is read once per fill
// from the order's explanation link, GET /v1/followers/{id}/orders/{order_id}.

import { $, fill, h } from "../dom.js";
import { amount, dateTime, magnitude, shortId, sign, subtract } from "../format.js";

const LIVE_KEEP = 300; // orders kept from the feed beyond what was paged in
const STATUS_BADGES = {
  dispatched: "ok", accepted: "ok", filled: "ok", partially_filled: "warn",
  pending: "idle", skipped: "idle", rejected: "bad", expired: "bad",
};

function statusBadge(status) {
  return h("span", { class: `badge badge-${STATUS_BADGES[status] || "idle"}` }, status);
}

/** The leader's own trade, from the sizing inputs every order carries: the position moved
 * from before to after, so the fill was a buy (or sell) of the difference. */
export function leaderTrade(order) {
  const sizing = order.sizing || {};
  if (sizing.leader_position_before == null || sizing.leader_position_after == null) return null;
  const delta = subtract(sizing.leader_position_after, sizing.leader_position_before);
  if (sign(delta) === 0) return null;
  return { side: sign(delta) > 0 ? "buy" : "sell", qty: magnitude(delta) };
}

/** What the venue said of the leader's fill (liquidation, reduce-only, fee), where known. */
function fillFacts(order) {
  return order.leader_fill || {};
}

export class OrderStream {
  constructor(section, api) {
    this.section = section;
    this.api = api;
    this.tbody = $("tbody", section);
    this.empty = $(".empty", section);
    this.older = $(".older", section);
    this.orders = new Map(); // order id -> { order, status, skipReason, fresh }
    this.explained = new Map(); // leader_id/fill id -> what one order's explanation link said
    this.filter = { follower_id: "", symbol: "", status: "" };
    this.cursor = null; // the last order of the last page read
    this.paged = 0;
    this.followerNames = new Map();
    this.leaderNames = new Map();
    this.older.addEventListener("click", () => this.loadOlder());
  }

  setNames(followerNames, leaderNames) {
    this.followerNames = followerNames;
    this.leaderNames = leaderNames;
  }

  query(extra = {}) {
    const params = new URLSearchParams({ orders: "100" });
    for (const [key, value] of Object.entries({ ...this.filter, ...extra })) {
      if (value) params.set(key, value);
    }
    return `/v1/dashboard/orders?${params}`;
  }

  /** Read the newest page again, with the current filter: everything shown is replaced. */
  async reload() {
    const page = await this.api.get(this.query());
    this.orders.clear();
    this.paged = 0;
    this.addPage(page);
  }

  async loadOlder() {
    if (!this.cursor) return;
    this.older.disabled = true;
    try {
      this.addPage(await this.api.get(this.query({
        before_at: this.cursor.created_at, before_id: this.cursor.order_id,
      })));
    } finally {
      this.older.disabled = false;
    }
  }

  addPage(page) {
    for (const order of page) this.remember(order, order.status, order.skip_reason, false);
    this.paged += page.length;
    this.cursor = page.length ? page[page.length - 1] : null;
    this.older.hidden = page.length < 100;
    this.render();
  }

  matches(order, status) {
    const { follower_id: follower, symbol, status: wanted } = this.filter;
    return (!follower || order.follower_id === follower)
      && (!symbol || order.symbol === symbol)
      && (!wanted || status === wanted);
  }

  /** A feed message: {"type": "order", ...} or {"type": "order_status", ...}. */
  receive(message) {
    if (message.type === "order" && message.order) {
      if (!this.matches(message.order, message.status)) return;
      if (message.order.sizing === undefined) this.explain(message.order);
      this.remember(message.order, message.status, message.skip_reason, true);
      this.trim();
      this.render();
    } else if (message.type === "order_status") {
      const known = this.orders.get(message.order_id);
      if (!known) return;
      known.status = message.status;
      const row = this.tbody.querySelector(`tr[data-order-id="${CSS.escape(message.order_id)}"] .status`);
      if (row) row.replaceChildren(statusBadge(message.status));
    }
  }

  /** A lean order (version 2): its fill's explanation, read once per fill; meanwhile the
   * order is placed by when it arrived. */
  explain(order) {
    const key = fillKey(order);
    const known = this.explained.get(key);
    if (known && known.created_at) order.created_at = known.created_at;
    if (known) return;
    order.created_at = new Date().toISOString();
    this.explained.set(key, {});
    if (this.explained.size > LIVE_KEEP) this.explained.delete(this.explained.keys().next().value);
    this.api.get(order.explanation).then((detail) => {
      const shared = {
        created_at: detail.created_at, sizing: detail.sizing, leader_fill: detail.leader_fill,
      };
      this.explained.set(key, shared);
      for (const item of this.orders.values()) {
        const lean = item.order.sizing === undefined;
        if (lean && fillKey(item.order) === key) item.order.created_at = shared.created_at;
      }
      this.render();
    }, () => this.explained.delete(key)); // shown without it; the next order of the fill asks again
  }

  remember(order, status, skipReason, fresh) {
    const known = this.orders.get(order.order_id);
    if (known) {
      known.status = status;
      return;
    }
    this.orders.set(order.order_id, { order, status, skipReason, fresh });
  }

  /** Live orders past what was paged in are dropped oldest first. */
  trim() {
    const keep = Math.max(this.paged, LIVE_KEEP);
    if (this.orders.size <= keep) return;
    const oldest = [...this.orders.values()].sort(byNewest).slice(keep);
    for (const item of oldest) this.orders.delete(item.order.order_id);
  }

  render() {
    const groups = new Map(); // leader_id/fill id -> items, in the order of their newest item
    for (const item of [...this.orders.values()].sort(byNewest)) {
      const key = fillKey(item.order);
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(item);
    }
    const rows = [];
    for (const items of groups.values()) {
      rows.push(this.fillRow(items[0].order));
      for (const item of items.reverse()) rows.push(this.orderRow(item));
    }
    fill(this.tbody, rows);
    for (const item of this.orders.values()) item.fresh = false;
    this.empty.hidden = this.orders.size > 0;
  }

  fillRow(order) {
    // A lean order's fill: what its explanation link said (nothing until it answers).
    const info = order.sizing === undefined ? this.explained.get(fillKey(order)) || {} : order;
    const sizing = info.sizing || {};
    const facts = fillFacts(info);
    const leader = this.leaderNames.get(order.leader_id) || `leader ${shortId(order.leader_id)}`;
    const trade = leaderTrade(info);
    const sync = facts.kind === "sync" || order.leader_fill_id.startsWith("sync:");
    return h("tr", { class: "fill-row", "data-fill-id": order.leader_fill_id },
      h("td", { colspan: 8 },
        facts.liquidation ? h("span", { class: "badge badge-bad liquidation" }, "liquidation") : null,
        "fill ", h("span", { class: "mono" }, order.leader_fill_id), " · ", leader, " ",
        trade && !sync
          ? h("span", { class: "leader-trade" },
            h("span", { class: `side-${trade.side}` }, trade.side), ` ${amount(trade.qty)} ${sizing.leader_symbol || order.symbol}`)
          : h("span", { class: "leader-trade muted" }, sync ? `sync${facts.reason ? ` (${facts.reason})` : ""}` : ""),
        sizing.leader_price ? ` @ ${amount(sizing.leader_price)}` : "",
        h("span", { class: "muted" },
          ` · position ${amount(sizing.leader_position_before)} → ${amount(sizing.leader_position_after)}`,
          facts.reduce_only ? " · reduce-only" : "",
          facts.fee != null ? ` · fee ${amount(facts.fee)} ${facts.fee_asset || ""}` : ""),
      ),
    );
  }

  orderRow({ order, status, skipReason, fresh }) {
    const skipped = status === "skipped";
    const kind = [order.type, order.reduce_only ? "reduce-only" : null, order.time_in_force]
      .filter(Boolean).join(" ");
    return h("tr", {
      class: `order-row${fresh ? " fresh" : ""}`,
      "data-order-id": order.order_id,
      "data-follower-id": order.follower_id,
    },
    h("td", { class: "mono when", title: order.created_at }, dateTime(order.created_at)),
    h("td", {}, this.followerNames.get(order.follower_id) || shortId(order.follower_id)),
    h("td", {}, order.symbol),
    skipped ? h("td", { class: "muted" }, "—") : h("td", { class: `side-${order.side}` }, order.side),
    h("td", { class: "num mono" }, skipped ? "—" : amount(order.qty)),
    h("td", { class: "col-type" }, skipped ? "—" : kind),
    h("td", { class: "status" }, statusBadge(status)),
    h("td", { class: "reason muted" }, skipReason || ""),
    );
  }
}

function fillKey(order) {
  return `${order.leader_id}/${order.leader_fill_id}`;
}

function byNewest(x, y) {
  const a = x.order.created_at;
  const b = y.order.created_at;
  if (a !== b) return new Date(b) - new Date(a);
  return x.order.order_id < y.order.order_id ? -1 : 1;
}
