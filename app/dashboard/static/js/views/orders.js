// The stream of mirrored orders, grouped by the leader fill that produced them (fill -> orders),
// newest fill first. History comes from /v1/dashboard/orders, then the feed adds to it live.

import { $, h } from "../dom.js";
import { amount, clock, shortId } from "../format.js";

const MAX_ORDERS = 300;
const STATUS_BADGES = {
  dispatched: "ok", accepted: "ok", filled: "ok", partially_filled: "warn",
  pending: "idle", skipped: "idle", rejected: "bad", expired: "bad",
};

function statusBadge(status) {
  return h("span", { class: `badge badge-${STATUS_BADGES[status] || "idle"}` }, status);
}

export class OrderStream {
  constructor(section) {
    this.tbody = $("tbody", section);
    this.empty = $(".empty", section);
    this.groups = new Map(); // leader_id + fill id -> { header, last }
    this.rows = new Map(); // order id -> tr
    this.followerNames = new Map();
    this.leaderNames = new Map();
  }

  setNames(followerNames, leaderNames) {
    this.followerNames = followerNames;
    this.leaderNames = leaderNames;
  }

  /** Replace everything with these orders (API shape, newest first). */
  load(orders) {
    this.tbody.replaceChildren();
    this.groups.clear();
    this.rows.clear();
    for (const order of [...orders].reverse()) {
      this.add(order, order.status, order.skip_reason, false);
    }
    this.empty.hidden = this.rows.size > 0;
  }

  /** A feed message: {"type": "order", ...} or {"type": "order_status", ...}. */
  receive(message) {
    if (message.type === "order" && message.order) {
      this.add(message.order, message.status, message.skip_reason, true);
    } else if (message.type === "order_status") {
      const row = this.rows.get(message.order_id);
      if (row) row.querySelector(".status").replaceChildren(statusBadge(message.status));
    }
  }

  add(order, status, skipReason, fresh) {
    const existing = this.rows.get(order.order_id);
    if (existing) {
      existing.querySelector(".status").replaceChildren(statusBadge(status));
      return;
    }
    const key = `${order.leader_id}/${order.leader_fill_id}`;
    let group = this.groups.get(key);
    if (!group) {
      const header = this.fillRow(order);
      this.tbody.prepend(header);
      group = { header, last: header };
      this.groups.set(key, group);
    }
    const row = this.orderRow(order, status, skipReason);
    row.dataset.group = key;
    if (fresh) row.classList.add("fresh");
    group.last.after(row);
    group.last = row;
    this.rows.set(order.order_id, row);
    this.empty.hidden = true;
    this.trim();
  }

  fillRow(order) {
    const sizing = order.sizing || {};
    const facts = order.leader_fill || {};
    const leader = this.leaderNames.get(order.leader_id) || `leader ${shortId(order.leader_id)}`;
    return h("tr", { class: "fill-row", "data-fill-id": order.leader_fill_id },
      h("td", { colspan: 8 },
        facts.liquidation ? h("span", { class: "badge badge-bad liquidation" }, "liquidation") : "",
        facts.liquidation ? " " : "",
        "fill ", h("span", { class: "mono" }, order.leader_fill_id), " · ", leader,
        ` · position ${amount(sizing.leader_position_before)} → ${amount(sizing.leader_position_after)}`,
        sizing.leader_price ? ` @ ${amount(sizing.leader_price)}` : "",
        facts.reduce_only ? " · reduce-only" : "",
        facts.fee != null ? ` · fee ${amount(facts.fee)} ${facts.fee_asset || ""}` : "",
      ),
    );
  }

  orderRow(order, status, skipReason) {
    const kind = [order.type, order.reduce_only ? "reduce-only" : null, order.time_in_force]
      .filter(Boolean).join(" ");
    return h("tr", { class: "order-row", "data-order-id": order.order_id, "data-follower-id": order.follower_id },
      h("td", { class: "mono" }, clock(order.created_at)),
      h("td", {}, this.followerNames.get(order.follower_id) || shortId(order.follower_id)),
      h("td", {}, order.symbol),
      h("td", { class: `side-${order.side}` }, order.side),
      h("td", { class: "num mono" }, amount(order.qty)),
      h("td", {}, kind),
      h("td", { class: "status" }, statusBadge(status)),
      h("td", { class: "reason muted" }, skipReason || ""),
    );
  }

  /** Keep the newest MAX_ORDERS orders: drop whole fills from the bottom. */
  trim() {
    while (this.rows.size > MAX_ORDERS) {
      const last = this.tbody.lastElementChild;
      if (!last) return;
      if (last.dataset.orderId) {
        this.rows.delete(last.dataset.orderId);
        const group = this.groups.get(last.dataset.group);
        if (group && group.last === last) group.last = last.previousElementSibling;
      } else {
        for (const [key, group] of this.groups) if (group.header === last) this.groups.delete(key);
      }
      last.remove();
    }
  }
}
