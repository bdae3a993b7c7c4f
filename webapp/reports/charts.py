"""Charts drawn on the server as inline SVG: no script, no library, nothing from the network,
and the pages' Content-Security-Policy holds (colours are SVG attributes, not styles). Each
chart has a <title> per mark (the browser's tooltip) and the page shows the numbers beside it.
"""

from __future__ import annotations

from markupsafe import Markup, escape

ANSWERED = "#2f855a"
ATTEMPTS = "#a0aec0"
BAR = "#3182ce"
TEXT = "#4a5568"


def _svg(width: int, height: int, body: list[str], label: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT}" '
        f'text-anchor="{anchor}">{escape(text)}</text>'
    )


def bars(items: list[tuple[str, float]], title: str, maximum: float | None = None) -> Markup:
    """Horizontal bars, one per (label, value)."""
    row, label_width, width = 22, 190, 640
    top = max([maximum or 0] + [value for _label, value in items]) or 1
    body = []
    for index, (label, value) in enumerate(items):
        y = index * row
        length = (width - label_width - 60) * value / top
        body.append(_text(label_width - 6, y + 15, label[:30], "end"))
        body.append(
            f'<rect x="{label_width}" y="{y + 4}" width="{length:.1f}" height="{row - 8}" '
            f'fill="{BAR}"><title>{escape(label)}: {value}</title></rect>'
        )
        body.append(_text(label_width + length + 4, y + 15, f"{value}"))
    return _svg(width, max(row, row * len(items)), body, title)


def _shade(rate: float | None) -> str:
    """White for no answers, deep green for every attempt answered; grey: no attempts."""
    if rate is None:
        return "#edf2f7"
    low, high = (255, 255, 255), (39, 103, 73)
    mixed = [round(a + (b - a) * min(1.0, rate)) for a, b in zip(low, high, strict=True)]
    return "#" + "".join(f"{part:02x}" for part in mixed)


def heat_map(cells: dict[tuple[int, int], dict], weekdays: list[str], minute: int = 0) -> Markup:
    """7 rows (Monday first) by 24 local hours; a cell's shade is its answer rate."""
    cell, left, top = 24, 40, 18
    body = []
    for hour in range(24):
        if hour % 3 == 0:
            body.append(
                _text(left + hour * cell + cell / 2, 12, f"{hour:02d}:{minute:02d}", "middle", 9)
            )
    for day in range(1, 8):
        y = top + (day - 1) * cell
        body.append(_text(left - 6, y + 16, weekdays[day - 1], "end"))
        for hour in range(24):
            values = cells.get((day, hour))
            rate = (
                values["picked_up"] / values["attempts"] if values and values["attempts"] else None
            )
            tip = f"{weekdays[day - 1]} {hour:02d}:{minute:02d}: " + (
                f"{values['picked_up']}/{values['attempts']} ({100 * rate:.0f} %)"
                if rate is not None
                else "0"
            )
            body.append(
                f'<rect x="{left + hour * cell}" y="{y}" width="{cell - 2}" '
                f'height="{cell - 2}" fill="{_shade(rate)}" data-day="{day}" '
                f'data-hour="{hour}"><title>{escape(tip)}</title></rect>'
            )
    return _svg(left + 24 * cell, top + 7 * cell, body, "heat map")


def trend(series: list[tuple[str, dict]]) -> Markup:
    """Attempts (grey) and answered (green) per day, week or month, oldest on the left."""
    width, height, bottom, left = 720, 180, 20, 36
    step = (width - left - 10) / max(1, len(series))
    bar = min(step * 0.6, 40.0)
    top = max([values["attempts"] for _label, values in series] + [1])
    body = [
        _text(left - 4, 12, str(top), "end", 9),
        _text(left - 4, height - bottom, "0", "end", 9),
    ]
    for index, (label, values) in enumerate(series):
        x = left + index * step
        for value, colour, shift in (
            (values["attempts"], ATTEMPTS, 0.0),
            (values["picked_up"], ANSWERED, 0.35),
        ):
            h = (height - bottom - 8) * value / top
            body.append(
                f'<rect x="{x + shift * bar * 1.6:.1f}" y="{height - bottom - h:.1f}" '
                f'width="{max(1.0, bar):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{escape(label)}: {value}</title></rect>"
            )
        if len(series) <= 16 or index % max(1, len(series) // 8) == 0:
            body.append(_text(x, height - 4, label[5:] if len(label) == 10 else label, size=9))
    return _svg(width, height, body, "trend")
