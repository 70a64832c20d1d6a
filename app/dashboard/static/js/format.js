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

/** Date and time in the viewer's time zone, with the zone: "2026-12-07 17:03:21.123 UTC". */
export function dateTime(iso) {
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return "";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
    .formatToParts(at).find((part) => part.type === "timeZoneName");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} `
    + `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}.${pad(at.getMilliseconds(), 3)}`
    + (zone ? ` ${zone.value}` : "");
}

// Exact decimal arithmetic on the API's strings (BigInt at a common scale), for the few
// differences the page shows: never through a float.
function scaled(text) {
  const negative = text.startsWith("-");
  const [whole, frac = ""] = (negative ? text.slice(1) : text).split(".");
  return { value: BigInt(whole + frac) * (negative ? -1n : 1n), scale: frac.length };
}

function unscaled(value, scale) {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, "");
  return (negative ? "-" : "") + whole + (frac ? "." + frac : "");
}

/** a - b for decimal strings, exactly: subtract("0.3", "0.1") -> "0.2". */
export function subtract(a, b) {
  const x = scaled(String(a));
  const y = scaled(String(b));
  const scale = Math.max(x.scale, y.scale);
  const value = x.value * 10n ** BigInt(scale - x.scale) - y.value * 10n ** BigInt(scale - y.scale);
  return unscaled(value, scale);
}

/** "-1.5" -> "1.5". */
export function magnitude(text) {
  return String(text).replace(/^-/, "");
}

/** The sign of a decimal string: -1, 0 or 1. */
export function sign(text) {
  const value = scaled(String(text)).value;
  return value < 0n ? -1 : value > 0n ? 1 : 0;
}
