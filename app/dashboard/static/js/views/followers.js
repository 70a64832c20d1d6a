// Followers: equity, and each live subscription's settings and status.

import { fill, h } from "../dom.js";
import { amount, shortId } from "../format.js";

const STATUS_BADGES = { active: "ok", paused: "idle", close_only: "warn" };

function settings(sub) {
  const sizing = sub.sizing || {};
  const parts = [`×${sub.multiplier}`, sizing.mode || "target"];
  if (sizing.notional) parts.push(`notional ${amount(sizing.notional)}`);
  if (sizing.max_order_notional) parts.push(`max order ${amount(sizing.max_order_notional)}`);
  if (sizing.max_position_notional) parts.push(`max position ${amount(sizing.max_position_notional)}`);
  if (sizing.max_leverage) parts.push(`max leverage ${sizing.max_leverage}`);
  if (sizing.max_slippage) parts.push(`slippage ${sizing.max_slippage}`);
  if (sizing.equity_floor) parts.push(`floor ${amount(sizing.equity_floor)}`);
  if (sizing.symbols) parts.push("symbol rules");
  return parts.join(" · ");
}

function subscriptionItem(sub, leaderNames) {
  return h("li", { "data-subscription-id": sub.id },
    h("span", { class: `badge badge-${STATUS_BADGES[sub.status] || "idle"}` }, sub.status),
    h("span", {}, leaderNames.get(sub.leader_id) || `leader ${shortId(sub.leader_id)}`),
    h("span", { class: "muted" }, settings(sub)),
    sub.status_reason ? h("span", { class: "muted small" }, `(${sub.status_reason})`) : null,
  );
}

export function renderFollowers(tbody, followers, leaderNames) {
  fill(tbody, followers.map((follower) =>
    h("tr", { "data-follower-id": follower.id },
      h("td", {}, follower.name),
      h("td", { class: "num", title: follower.equity_as_of ? `as of ${follower.equity_as_of}` : null },
        amount(follower.equity)),
      h("td", {},
        follower.subscriptions.length
          ? h("ul", { class: "sub-list" }, follower.subscriptions.map((sub) => subscriptionItem(sub, leaderNames)))
          : h("span", { class: "muted" }, "no subscription"),
      ),
    ),
  ));
  if (!followers.length) fill(tbody, h("tr", {}, h("td", { colspan: 3, class: "muted" }, "No followers.")));
}
