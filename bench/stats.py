"""Percentiles and the result table."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``samples``."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Measurement:
    name: str
    unit: str
    ours: dict[str, float]
    baseline: dict[str, float] = field(default_factory=dict)
    notes: str = ""
    lower_is_better: bool = True

    def ratios(self) -> dict[str, float]:
        """How many times better than the baseline, per figure."""
        out = {}
        for key, value in self.ours.items():
            base = self.baseline.get(key)
            if base is None or value == 0 or math.isnan(value) or math.isnan(base):
                continue
            out[key] = base / value if self.lower_is_better else value / base
        return out


def latency_summary(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": float(len(ms)),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "p99.9": percentile(ms, 99.9),
        "max": max(ms) if ms else math.nan,
    }


def render(results: list[Measurement]) -> str:
    lines = [
        f"{'measurement':<34} {'figure':>7} {'ours':>12} {'baseline':>12} {'x better':>9}",
        "-" * 78,
    ]
    for m in results:
        ratios = m.ratios()
        for key, value in m.ours.items():
            if key == "n":
                continue
            base = m.baseline.get(key)
            base_text = f"{base:12.3f}" if base is not None else f"{'-':>12}"
            ratio = ratios.get(key)
            ratio_text = f"{ratio:9.1f}" if ratio is not None else f"{'-':>9}"
            label = f"{m.name} ({m.unit})"
            lines.append(f"{label:<34} {key:>7} {value:12.3f} {base_text} {ratio_text}")
        if m.notes:
            lines.append(f"    {m.notes}")
    return "\n".join(lines)


def write_json(path: Path, results: list[Measurement], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "meta": meta,
        "results": [{**asdict(m), "ratios": m.ratios()} for m in results],
    }
    path.write_text(json.dumps(body, indent=2, default=str))
