"""Charts drawn on the server as SVG: stacked bars over time, laid out here, drawn by the
`chart` macro (templates/macros.html). Each bar carries its numbers as a tooltip, and the
legend the totals, so a chart is readable at a glance and exact on hover."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

WIDTH, HEIGHT = 720, 150  # the plot area, in SVG units (the chart scales to its box)
LEFT, BOTTOM, TOP = 48, 20, 8  # room for the axis labels


@dataclass(frozen=True)
class Layer:
    """One series: its name, the CSS class that colours it, and a value per bucket."""

    name: str
    css: str
    values: Sequence[int]

    @property
    def total(self) -> int:
        return sum(self.values)


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    css: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    segments: list[Segment]
    title: str  # the tooltip: when, and each layer's count


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[tuple[float, str]]  # (y, label) of the value axis
    labels: list[tuple[float, str]]  # (x, label) of the time axis
    legend: list[Layer]
    empty: bool
    left: int = LEFT  # where the plot starts (the value axis's labels end)
    base: int = TOP + HEIGHT  # where the bars stand (the time axis's labels begin)


def stacked(buckets: Sequence[datetime], step: timedelta, layers: Sequence[Layer]) -> Chart:
    """Bars per bucket, the layers stacked in order (the first at the bottom)."""
    tops = [sum(layer.values[i] for layer in layers) for i in range(len(buckets))]
    scale = _nice(max(tops, default=0))
    pitch = WIDTH / max(len(buckets), 1)
    bars = []
    for i, bucket in enumerate(buckets):
        base, segments = float(TOP + HEIGHT), []
        for layer in layers:
            height = HEIGHT * layer.values[i] / scale
            if height > 0:
                base -= height
                segments.append(Segment(round(base, 2), round(height, 2), layer.css))
        title = f"{_when(bucket, step)}: " + ", ".join(
            f"{layer.values[i]:,} {layer.name}" for layer in layers
        )
        bars.append(Bar(round(LEFT + i * pitch + pitch * 0.1, 2), round(pitch * 0.8, 2),
                        segments, title))  # fmt: skip
    halves = (0, 0.5, 1) if scale % 2 == 0 else (0, 1)  # (no "2" half way up to 5)
    ticks = [(TOP + HEIGHT - HEIGHT * f, f"{int(scale * f):,}") for f in halves]
    every = max(1, len(buckets) // 6)
    labels = [
        (round(LEFT + i * pitch, 2), _label(bucket, step))
        for i, bucket in enumerate(buckets)
        if i % every == 0 and LEFT + i * pitch < LEFT + WIDTH - 60  # (room for the text)
    ]
    return Chart(LEFT + WIDTH, TOP + HEIGHT + BOTTOM, bars, ticks, labels, list(layers),
                 empty=not any(tops))  # fmt: skip


def _nice(top: int) -> int:
    """The value axis's top: 1, 2 or 5 times a power of ten, at least `top` (and 1)."""
    nice = 1
    while nice < top:
        nice = _next_nice(nice)
    return nice


def _next_nice(value: int) -> int:
    """1 → 2 → 5 → 10 → 20 → …"""
    text = str(value)
    lead, power = int(text[0]), int("1" + "0" * (len(text) - 1))
    factor: int = {1: 2, 2: 5, 5: 10}[lead]
    return factor * power


def _label(bucket: datetime, step: timedelta) -> str:
    return bucket.astimezone(UTC).strftime("%a %H:%M" if step >= timedelta(hours=1) else "%H:%M")


def _when(bucket: datetime, step: timedelta) -> str:
    start = bucket.astimezone(UTC)
    return f"{start:%Y-%m-%d %H:%M} to {start + step:%H:%M} UTC"


def lengths(values: Sequence[int]) -> list[float]:
    """Bars side by side in a table: each value's length (0 to 100) against the largest."""
    top = max(values, default=0)
    return [round(100 * v / top, 1) if top else 0.0 for v in values]
