// Latency histograms from the service's own Prometheus histograms (/v1/dashboard/latency):
// the whole fill (received -> orders enqueued) and each of its stages.

import { histogram } from "../charts.js";
import { $, fill, h } from "../dom.js";
import { seconds } from "../format.js";

function title(series) {
  return series.stage ? `stage: ${series.stage}` : "fill → enqueued";
}

/** The upper bound of the bucket holding the q-quantile: what a histogram can tell. */
function quantile(series, q) {
  const rank = q * series.count;
  let seen = 0;
  for (const bucket of series.buckets) {
    seen += bucket.count;
    if (seen >= rank && seen > 0) return bucket.le;
  }
  return null;
}

export class LatencyView {
  constructor(section) {
    this.tabs = $(".tabs", section);
    this.chart = $(".chart", section);
    this.summary = $(".summary", section);
    this.selected = null;
    this.series = [];
  }

  render(series) {
    this.series = series;
    if (!series.some((item) => title(item) === this.selected)) this.selected = series.length ? title(series[0]) : null;
    fill(this.tabs, series.map((item) => {
      const name = title(item);
      const button = h("button", { type: "button", role: "tab", "aria-selected": String(name === this.selected) }, name);
      button.addEventListener("click", () => {
        this.selected = name;
        this.render(this.series);
      });
      return button;
    }));
    const current = series.find((item) => title(item) === this.selected);
    if (!current) {
      fill(this.chart, h("p", { class: "muted" }, "No latency recorded yet."));
      this.summary.textContent = "";
      return;
    }
    fill(this.chart, histogram(current.buckets.map((bucket) => ({
      label: bucket.le === "+Inf" ? "more" : `≤${seconds(bucket.le)}`,
      count: bucket.count,
      title: `${bucket.count} under ${seconds(bucket.le)}`,
    }))));
    const mean = current.count ? seconds(current.sum_seconds / current.count) : "—";
    const p50 = quantile(current, 0.5);
    const p99 = quantile(current, 0.99);
    this.summary.textContent = current.count
      ? `${current.count} ${current.count === 1 ? "observation" : "observations"} · mean ${mean} · p50 ≤ ${seconds(p50)} · p99 ≤ ${seconds(p99)}`
      : "No observations yet.";
  }
}
