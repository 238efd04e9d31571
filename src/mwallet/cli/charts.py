"""Charts of money out per period and category: in the terminal (Rich) and as a PNG (Pillow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

    from mwallet.core.domain.statistics import UsageStats

# One colour per category, the same in the terminal and in the picture.
COLOURS = {
    "transfer": (66, 133, 244),
    "withdrawal": (219, 68, 55),
    "airtime": (244, 180, 0),
    "water": (0, 172, 193),
    "electricity": (255, 112, 67),
    "internet": (126, 87, 194),
    "tv": (141, 110, 99),
    "other_bills": (120, 144, 156),
    "cash_in_given": (15, 157, 88),
    "other": (158, 158, 158),
}
BAR_WIDTH = 48  # terminal cells for the longest bar


def _categories(stats: UsageStats) -> list[str]:
    from mwallet.core.domain.statistics import OUT_CATEGORIES

    used = {category for one in stats.periods for category in one.money_out}
    return [c for c in OUT_CATEGORIES if c in used] + sorted(used - set(OUT_CATEGORIES))


def _colour(category: str) -> tuple[int, int, int]:
    return COLOURS.get(category, (158, 158, 158))


def terminal_chart(stats: UsageStats) -> RenderableType:
    """A table: one stacked bar per period (a cell per category's share), its total and the change
    against the period before; then a legend."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from mwallet.cli.stats_output import _shown

    categories = _categories(stats)
    largest = max((one.total_out.gross for one in stats.periods), default=0)
    table = Table(box=None, show_header=True, pad_edge=False)
    table.add_column(stats.period.value)
    table.add_column("money out", no_wrap=True)
    table.add_column("total", justify="right")
    table.add_column("change", justify="right")
    for one, change in zip(stats.periods, stats.changes(), strict=True):
        bar = Text()
        for category in categories:
            tally = one.money_out.get(category)
            if tally is None or largest == 0:
                continue
            cells = max(1, round(tally.gross * BAR_WIDTH / largest))
            red, green, blue = _colour(category)
            bar.append("█" * cells, style=f"rgb({red},{green},{blue})")
        shown_change = "" if change is None else f"{change:+.1f}%"
        table.add_row(
            one.bucket.label, bar, _shown(one.total_out.gross, stats.currency), shown_change
        )
    legend = Text()
    for category in categories:
        red, green, blue = _colour(category)
        legend.append("■ ", style=f"rgb({red},{green},{blue})")
        legend.append(f"{category}  ")
    return Group(table, legend) if categories else Group(table, Text("nothing went out"))


def png_chart(stats: UsageStats, path: Path, *, width: int = 900, height: int = 500) -> None:
    """Stacked bars of money out per period and category, with a legend, as a PNG at `path`."""
    from PIL import Image, ImageDraw, ImageFont

    from mwallet.cli.stats_output import _shown, _span

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=11)
    categories = _categories(stats)
    title = (
        f"{stats.name}: money out per {stats.period.value} ({stats.currency}, fees included), "
        f"{_span(stats)}"
    )
    draw.text((20, 12), title, fill="black", font=font)
    left, top, right, bottom = 80, 50, width - 170, height - 50
    draw.line((left, top, left, bottom), fill="black")
    draw.line((left, bottom, right, bottom), fill="black")
    largest = max((one.total_out.gross for one in stats.periods), default=0)
    for step in range(5):  # the value axis: 0 to the largest total, in quarters
        value = largest * step // 4
        y = bottom - (bottom - top) * step // 4
        draw.line((left - 4, y, right, y), fill=(225, 225, 225) if step else "black")
        draw.text((8, y - 7), _shown(value, stats.currency).split(" ")[0], fill="black", font=small)
    slot = (right - left) / max(len(stats.periods), 1)
    bar = max(2, int(slot * 0.6))
    for index, one in enumerate(stats.periods):
        x = int(left + slot * index + (slot - bar) / 2)
        y = bottom
        for category in categories:
            tally = one.money_out.get(category)
            if tally is None or largest == 0:
                continue
            size = max(1, round(tally.gross * (bottom - top) / largest))
            draw.rectangle((x, y - size, x + bar, y - 1), fill=_colour(category))
            y -= size
        label = one.bucket.label
        draw.text((x, bottom + 8), label, fill="black", font=small)
    for index, category in enumerate(categories):  # the legend
        y = top + index * 22
        draw.rectangle((right + 20, y, right + 34, y + 14), fill=_colour(category))
        draw.text((right + 42, y), category, fill="black", font=small)
    if not categories:
        draw.text((left + 20, top + 20), "nothing went out", fill="black", font=font)
    image.save(path, format="PNG")
