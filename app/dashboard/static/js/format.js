// Display formatting. Amounts arrive as decimal strings and are shown as they are (grouped by
// thousands), never through a float; numbers are parsed only to size chart geometry.

/** "1234567.5" -> "1,234,567.5"; null -> "—". */
export function amount(text) {
  if (text === null || text === undefined) return "—";
  const [whole, frac] = String(text).split(".");
  const sign = whole.startsWith("-") ? "-" : "";
  const digits = sign ? whole.slice(1) : whole;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return sign + grouped + (frac !== undefined ? "." + frac : "");
}

/** A ratio as a signed percentage with 2 decimals: "0.2" -> "+20.00%". */
export function percent(ratio) {
  if (ratio === null || ratio === undefined) return "—";
  const value = Number(ratio) * 100;
  return (value > 0 ? "+" : "") + value.toFixed(2) + "%";
}

/** HH:MM:SS.mmm in the viewer's time zone. */
export function clock(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`;
}

/** The first 8 characters of an id, for a column that only needs to tell ids apart. */
export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

/** Seconds to a readable duration: 0.0005 -> "0.5 ms". */
export function seconds(value) {
  if (value === "+Inf") return "∞";
  const s = Number(value);
  if (s < 1) return `${+(s * 1000).toPrecision(3)} ms`;
  return `${+s.toPrecision(3)} s`;
}
