"""A tiny in-process metrics registry rendered in Prometheus text format (no extra dependency)."""

from __future__ import annotations

from collections import defaultdict

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, object] | None) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in (labels or {}).items()))


class Metrics:
    """Counters, gauges and summaries (count + sum + max) keyed by name and label set."""

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.gauges: dict[str, dict[Labels, float]] = defaultdict(dict)
        self.summaries: dict[str, dict[Labels, list[float]]] = defaultdict(dict)

    def inc(self, name: str, value: float = 1, labels: dict[str, object] | None = None) -> None:
        self.counters[name][_labels(labels)] += value

    def set(self, name: str, value: float, labels: dict[str, object] | None = None) -> None:
        self.gauges[name][_labels(labels)] = value

    def observe(self, name: str, value: float, labels: dict[str, object] | None = None) -> None:
        stats = self.summaries[name].setdefault(_labels(labels), [0.0, 0.0, 0.0])
        stats[0] += 1
        stats[1] += value
        stats[2] = max(stats[2], value)

    def counter(self, name: str, labels: dict[str, object] | None = None) -> float:
        return self.counters.get(name, {}).get(_labels(labels), 0.0)

    def counter_total(self, name: str) -> float:
        return sum(self.counters.get(name, {}).values())

    def render(self, prefix: str = "clickagg_") -> str:
        out: list[str] = []

        def fmt(labels: Labels) -> str:
            if not labels:
                return ""
            return "{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}"

        for name, series in sorted(self.counters.items()):
            out.append(f"# TYPE {prefix}{name} counter")
            out.extend(f"{prefix}{name}{fmt(lb)} {v:g}" for lb, v in series.items())
        for name, series in sorted(self.gauges.items()):
            out.append(f"# TYPE {prefix}{name} gauge")
            out.extend(f"{prefix}{name}{fmt(lb)} {v:g}" for lb, v in series.items())
        for name, stats in sorted(self.summaries.items()):
            out.append(f"# TYPE {prefix}{name} summary")
            for lb, (count, total, peak) in stats.items():
                out.append(f"{prefix}{name}_count{fmt(lb)} {count:g}")
                out.append(f"{prefix}{name}_sum{fmt(lb)} {total:g}")
                out.append(f"{prefix}{name}_max{fmt(lb)} {peak:g}")
        return "\n".join(out) + "\n"


METRICS = Metrics()
