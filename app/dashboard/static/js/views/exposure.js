// Exposure ÷ equity per follower and symbol, next to the leader's × the multiplier: the
// synchronization the product promises. In sync, each pair of bars has the same length.

import { groupedBars } from "../charts.js";
import { fill, h } from "../dom.js";
import { percent, shortId } from "../format.js";

// The scale never ends below ±10% of equity: a 0.5% position is a short bar, not a full one.
const MIN_EXTENT = 0.1;

export function renderExposure(container, rows, followerNames, leaderNames) {
  const shown = rows.filter((row) => row.follower_position !== "0" || row.leader_position !== "0");
  if (!shown.length) {
    fill(container, h("p", { class: "muted" }, "No open positions."));
    return;
  }
  const name = (row) => followerNames.get(row.follower_id) || row.follower_id;
  shown.sort((x, y) => name(x).localeCompare(name(y)) || x.symbol.localeCompare(y.symbol));
  const chartRows = shown.map((row) => {
    const follower = followerNames.get(row.follower_id) || shortId(row.follower_id);
    const leader = leaderNames.get(row.leader_id) || `leader ${shortId(row.leader_id)}`;
    const mapped = row.symbol === row.leader_symbol ? "" : ` ← ${row.leader_symbol}`;
    return {
      label: `${follower} · ${row.symbol}${mapped}`,
      sublabel: `${leader} ×${row.multiplier}`,
      bars: [
        {
          value: row.target_ratio,
          text: percent(row.target_ratio),
          title: `leader: position ${row.leader_position} at ${row.mark_price}, equity ${row.leader_equity}`
            + ` (×${row.multiplier})`,
          cls: "bar-leader",
        },
        {
          value: row.follower_ratio,
          text: row.follower_ratio === null ? "no equity" : percent(row.follower_ratio),
          title: `follower: position ${row.follower_position} at ${row.mark_price}, equity ${row.follower_equity}`,
          cls: "bar-follower",
        },
      ],
    };
  });
  const axis = {
    label: "exposure ÷ equity",
    // Ticks in whole or half percents: the scale's end is 1, 2 or 5 × 10^k.
    tick: (ratio) => `${ratio > 0 ? "+" : ""}${+(ratio * 100).toFixed(2)}%`,
    minExtent: MIN_EXTENT,
    width: container.clientWidth,
  };
  fill(container,
    groupedBars(chartRows, axis),
    h("div", { class: "legend" },
      h("span", {}, h("span", { class: "swatch swatch-leader" }), "leader × multiplier"),
      h("span", {}, h("span", { class: "swatch swatch-follower" }), "follower"),
    ),
  );
}
