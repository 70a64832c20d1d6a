// The health strip: this instance's readiness and outbox, how many instances are alive, and
// each leader listener's state and reconnects (admin), from /v1/dashboard/health.

import { fill, h } from "../dom.js";
import { shortId } from "../format.js";

const STATUS = { ready: ["ok", "ready"], draining: ["warn", "draining"], not_ready: ["bad", "not ready"] };
const LISTENER_TONES = { connected: "ok", connecting: "warn", backfilling: "warn", reconnecting: "warn" };

function pill(tone, text, title) {
  return h("span", { class: `pill pill-${tone}`, title }, text);
}

export function renderHealth(container, health, leaderNames) {
  const [tone, text] = STATUS[health.status] || ["bad", health.status];
  const items = [
    pill(tone, text, `postgres ${health.postgres}, redis ${health.redis}`),
    health.postgres === "ok" ? null : pill("bad", "postgres down", health.postgres),
    health.redis === "ok" ? null : pill("bad", "redis down", health.redis),
    pill(health.outbox_backlog > 0 ? "warn" : "ok", `outbox ${health.outbox_backlog}`,
      "committed orders not yet in Redis"),
  ];
  if (health.instances !== null && health.instances !== undefined) {
    items.push(pill(health.instances > 0 ? "ok" : "warn", `instances ${health.instances}`,
      "instances alive (ingest heartbeats)"));
  }
  for (const listener of health.listeners || []) {
    const name = leaderNames.get(listener.leader_id) || `leader ${shortId(listener.leader_id)}`;
    const state = listener.alive ? listener.state || "starting" : "stopped";
    const reconnects = listener.reconnects ? ` · ${listener.reconnects} reconnects` : "";
    items.push(h("span", { class: "listener", "data-leader-id": listener.leader_id },
      pill(listener.alive ? LISTENER_TONES[state] || "idle" : "bad", `${name}: ${state}${reconnects}`,
        listener.last_error || null),
    ));
  }
  fill(container, items);
}
