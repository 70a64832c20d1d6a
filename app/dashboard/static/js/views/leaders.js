// Leaders: feed kind, listener state, equity, live subscriptions (admin only).

import { fill, h } from "../dom.js";
import { amount } from "../format.js";

const LISTENER_BADGES = { connected: "ok", starting: "warn", connecting: "warn", paused: "warn", stopped: "bad" };

function listenerCell(leader) {
  if (leader.feed.kind === "push") {
    // A push leader connects to us: what matters is whether its socket is open (here).
    return leader.push_sockets > 0
      ? h("span", { class: "badge badge-ok" }, "pushing")
      : h("span", { class: "badge badge-idle", title: "no push socket open on this instance" }, "no socket");
  }
  const state = leader.listener ? String(leader.listener.state) : "not running";
  const badge = LISTENER_BADGES[state] || "warn";
  const error = leader.listener && leader.listener.last_error;
  return h("span", {},
    h("span", { class: `badge badge-${badge}`, title: error || null }, state),
    leader.listener && leader.listener.reconnects
      ? h("span", { class: "muted small" }, ` ${leader.listener.reconnects} reconnects`)
      : null,
  );
}

export function renderLeaders(tbody, leaders) {
  fill(tbody, leaders.map((leader) =>
    h("tr", { "data-leader-id": leader.id },
      h("td", {}, leader.name),
      h("td", { class: "mono" }, leader.feed.kind === "push" ? "push" : leader.feed.url || leader.feed.kind),
      h("td", { class: "listener" }, listenerCell(leader)),
      h("td", { class: "num" }, amount(leader.equity)),
      h("td", { class: "num" }, String(leader.subscribers)),
    ),
  ));
  if (!leaders.length) fill(tbody, h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No leaders.")));
}
