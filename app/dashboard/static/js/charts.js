// Two hand-written SVG charts (no library): grouped horizontal bars around zero, for the
// exposure comparison, and a histogram. Values arrive as decimal strings; Number() is used
// only to place pixels, and every label shows the text the API sent.

import { s } from "./dom.js";

const WIDTH = 640;

/**
 * Horizontal bars from a zero line, a group per row:
 *   rows: [{ label, sublabel, bars: [{ value: "0.2", text: "+20.00%", cls: "bar-leader" }] }]
 */
export function groupedBars(rows) {
  const labelWidth = 200;
  const right = 70;
  const barHeight = 13;
  const gap = 4;
  const groupHeight = Math.max(...rows.map((r) => r.bars.length), 1) * (barHeight + gap) + 22;
  const height = rows.length * groupHeight + 24;
  const values = rows.flatMap((r) => r.bars.map((b) => Math.abs(Number(b.value) || 0)));
  const extent = Math.max(...values, 0.0001) * 1.05;
  const anyNegative = rows.some((r) => r.bars.some((b) => Number(b.value) < 0));
  const plotLeft = labelWidth;
  const plotRight = WIDTH - right;
  const zero = anyNegative ? (plotLeft + plotRight) / 2 : plotLeft;
  const scale = (anyNegative ? (plotRight - plotLeft) / 2 : plotRight - plotLeft) / extent;

  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${height}`, role: "img" });
  svg.append(s("line", { class: "axis", x1: zero, x2: zero, y1: 4, y2: height - 18 }));
  svg.append(s("text", { x: zero, y: height - 4, "text-anchor": "middle" }, "0"));
  rows.forEach((row, i) => {
    const top = 8 + i * groupHeight;
    svg.append(s("text", { class: "label", x: 0, y: top + 12 }, row.label));
    if (row.sublabel) svg.append(s("text", { x: 0, y: top + 27 }, row.sublabel));
    row.bars.forEach((bar, j) => {
      const value = Number(bar.value);
      const y = top + j * (barHeight + gap);
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
