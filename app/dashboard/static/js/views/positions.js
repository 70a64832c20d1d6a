// Positions, the synchronisation the product promises: per follower and symbol the position
// sizing tracks, the target (leader position × equity ratio × multiplier), and, where the
// venue's (or the executors') actual position is known, that and its drift from the target.

import { fill, h } from "../dom.js";
import { amount, shortId, sign } from "../format.js";

function driftCell(row) {
  if (row.drift === null || row.drift === undefined) return h("td", { class: "num muted drift" }, "—");
  const off = sign(row.drift) !== 0;
  return h("td", { class: `num mono drift ${off ? "drift-off" : "drift-ok"}` },
    off ? amount(row.drift) : "in sync");
}

export function renderPositions(section, rows, followerNames, leaderNames) {
  const tbody = section.querySelector("tbody");
  const name = (row) => followerNames.get(row.follower_id) || shortId(row.follower_id);
  const sorted = [...rows].sort((x, y) => name(x).localeCompare(name(y)) || x.symbol.localeCompare(y.symbol));
  fill(tbody, sorted.map((row) => {
    const leader = leaderNames.get(row.leader_id) || `leader ${shortId(row.leader_id)}`;
    const mapped = row.symbol === row.leader_symbol ? "" : ` ← ${row.leader_symbol}`;
    return h("tr", { "data-follower-id": row.follower_id, "data-symbol": row.symbol },
      h("td", {}, name(row)),
      h("td", {}, row.symbol, h("span", { class: "muted small" }, mapped)),
      h("td", { class: "muted col-leader" }, leader),
      h("td", { class: "num mono tracked" }, amount(row.position)),
      h("td", { class: "num mono target" }, amount(row.target)),
      h("td", {
        class: "num mono actual",
        title: row.actual_source ? `from the ${row.actual_source === "venue" ? "venue" : "executors' reports"}` : null,
      }, amount(row.actual)),
      driftCell(row),
    );
  }));
  section.querySelector(".empty").hidden = sorted.length > 0;
}
