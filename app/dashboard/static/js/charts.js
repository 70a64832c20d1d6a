// Two hand-written SVG charts (no library): grouped horizontal bars around zero, for the
// exposure comparison, and a histogram. Values arrive as decimal strings; Number() is used
// only to place pixels, and every label shows the text the API sent.

import { s } from "./dom.js";

const WIDTH = 640;

/** The smallest 1, 2 or 5 × 10^k at or above `value`: a round end for an axis. */
export function niceCeil(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/**
 * Horizontal bars from a zero line in the middle, a group per row, on a symmetric scale with a
 * labelled axis: a short position reads as far left as a long one reads right, and the scale
 * never shrinks below `minExtent`, so a small exposure looks small.
 *   rows: [{ label, sublabel, bars: [{ value: "0.2", text: "+20.00%", cls: "bar-leader" }] }]
 *   axis: { label: "exposure ÷ equity", tick: (value) => text, minExtent: 0.1 }
 */
export function groupedBars(rows, axis) {
  // Drawn at the container's own width (one unit a pixel), so text keeps its size on a phone;
  // a narrow chart puts each label above its bars instead of beside them.
  const width = Math.max(axis.width || WIDTH, 300);
  const narrow = width < 480;
  const labelWidth = narrow ? 12 : 200;
  const labelSpace = narrow ? 32 : 0;
  const right = narrow ? 12 : 70;
  const barHeight = 13;
  const gap = 4;
  const groupHeight = Math.max(...rows.map((r) => r.bars.length), 1) * (barHeight + gap) + 22 + labelSpace;
  const plotTop = 8;
  const plotBottom = plotTop + rows.length * groupHeight;
  const height = plotBottom + 40;
  const values = rows.flatMap((r) => r.bars.map((b) => Math.abs(Number(b.value) || 0)));
  const extent = niceCeil(Math.max(...values, axis.minExtent));
  const plotLeft = labelWidth;
  const plotRight = width - right;
  const zero = (plotLeft + plotRight) / 2;
  // Room at each end for the value written past the longest bar.
  const scale = (plotRight - plotLeft) / 2 / extent / (narrow ? 1.3 : 1);

  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": axis.label });
  for (const tick of [-extent, -extent / 2, 0, extent / 2, extent]) {
    const x = zero + tick * scale;
    svg.append(s("line", { class: tick === 0 ? "axis" : "grid", x1: x, x2: x, y1: plotTop - 4, y2: plotBottom }));
    svg.append(s("text", { class: "tick", x, y: plotBottom + 14, "text-anchor": "middle" }, axis.tick(tick)));
  }
  svg.append(s("text", { class: "axis-label", x: zero, y: plotBottom + 32, "text-anchor": "middle" },
    `${axis.label}  (← short · long →)`));
  rows.forEach((row, i) => {
    const top = plotTop + i * groupHeight;
    svg.append(s("text", { class: "label", x: 0, y: top + 12 }, row.label));
    if (row.sublabel) svg.append(s("text", { x: 0, y: top + 27 }, row.sublabel));
    row.bars.forEach((bar, j) => {
      const value = Number(bar.value);
      const y = top + labelSpace + j * (barHeight + gap);
      if (bar.value === null || Number.isNaN(value)) {
        svg.append(s("text", { x: zero + 4, y: y + barHeight - 2 }, bar.text));
        return;
      }
      const length = Math.max(Math.abs(value) * scale, value === 0 ? 0 : 1);
      const x = value < 0 ? zero - length : zero;
      svg.append(
        s("rect", { class: `bar ${bar.cls}`, x, y, width: length, height: barHeight, rx: 2 },
          s("title", {}, bar.title || bar.text)),
      );
      const textX = value < 0 ? x - 4 : x + length + 4;
      svg.append(
        s("text", { x: textX, y: y + barHeight - 2, "text-anchor": value < 0 ? "end" : "start" }, bar.text),
      );
    });
  });
  return svg;
}

/** A histogram: buckets [{ label, count, title }], bars scaled to the largest count. */
export function histogram(buckets) {
  const height = 210;
  const left = 36;
  const bottom = 34;
  const top = 16;
  const plotWidth = WIDTH - left - 8;
  const plotHeight = height - top - bottom;
  const most = Math.max(...buckets.map((b) => b.count), 1);
  const slot = plotWidth / Math.max(buckets.length, 1);

  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, role: "img" });
  // Grid lines at whole counts only: 0, the largest, and the middle when it is whole.
  const ticks = most % 2 === 0 ? [0, most / 2, most] : [0, most];
  for (const tick of ticks) {
    const y = top + plotHeight * (1 - tick / most);
    svg.append(s("line", { class: "grid", x1: left, x2: WIDTH - 8, y1: y, y2: y }));
    svg.append(s("text", { x: left - 4, y: y + 4, "text-anchor": "end" }, String(tick)));
  }
  buckets.forEach((bucket, i) => {
    const barHeight = (bucket.count / most) * plotHeight;
    const x = left + i * slot + slot * 0.15;
    const y = top + plotHeight - barHeight;
    svg.append(
      s("rect", { class: "bar bar-hist", x, y, width: slot * 0.7, height: barHeight, rx: 2 },
        s("title", {}, bucket.title)),
    );
    if (bucket.count > 0) {
      svg.append(s("text", { x: x + slot * 0.35, y: y - 3, "text-anchor": "middle" }, String(bucket.count)));
    }
    svg.append(
      s("text", { x: x + slot * 0.35, y: height - bottom + 14, "text-anchor": "middle" }, bucket.label),
    );
  });
  svg.append(s("line", { class: "axis", x1: left, x2: WIDTH - 8, y1: top + plotHeight, y2: top + plotHeight }));
  svg.append(s("text", { x: WIDTH / 2, y: height - 4, "text-anchor": "middle" }, "upper bound of the bucket"));
  return svg;
}
