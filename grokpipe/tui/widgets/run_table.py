"""The run table: one row per run, filterable and sortable, updated in place while runs train.

A Line-API widget: each row is drawn once into a Strip and kept until one of its cells changes,
so following live runs redraws the rows that changed and nothing else. (Textual's DataTable
invalidates every rendered line on any cell update, so a table of live runs was re-rendered in full
every second: most of the TUI's CPU.) Keys: up/down or j/k, page up/down, home/end; clicking a row
moves the cursor there, clicking a header sorts by that column (again: reversed).
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..rows import COLUMNS, format_cell, sort_value

SELECTED = ("selected", "✓")  # the last column: the selection mark
MAX_COLUMN_WIDTH = 28
HEADER = Style(bold=True, bgcolor="grey19")
ZEBRA = Style(bgcolor="grey11")
CURSOR = Style(bold=True, color="white", bgcolor="dodger_blue3")


class RunTable(ScrollView, can_focus=True):
    """Rows keyed by ``experiment/shard/run_id``; :meth:`show` keeps the cursor on the same run."""

    BINDINGS = [
        Binding("j,down", "cursor(1)", "down", show=False), Binding("k,up", "cursor(-1)", "up", show=False),
        Binding("pagedown", "page(1)", show=False), Binding("pageup", "page(-1)", show=False),
        Binding("home", "cursor_to(0)", show=False), Binding("end", "cursor_to(-1)", show=False),
    ]

    class Highlighted(Message):
        """The cursor moved to another run (or the run under it changed)."""

    class HeaderClicked(Message):
        def __init__(self, column: str):
            super().__init__()
            self.column = column

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.columns = [(key, header) for key, header, _ in COLUMNS] + [SELECTED]
        self.values: dict[str, dict] = {}
        self.keys: list[str] = []  # visible rows, in order
        self.cells: dict[str, dict[str, str]] = {}
        self.widths = [len(header) for _, header in self.columns]
        self.selected: set[str] = set()
        self.cursor = 0
        self.sort_key: str | None = None
        self.sort_reverse = False
        self._strips: dict[tuple, Strip] = {}

    # ---- what it shows

    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def current_key(self) -> str | None:
        return self.keys[self.cursor] if self.keys else None

    def show(self, values: dict[str, dict], visible: list[str]) -> None:
        """Show ``visible`` rows (in table order after sorting), redrawing the rows whose cells changed."""
        current = self.current_key
        if self.sort_key:
            visible = sorted(visible, key=lambda k: sort_value(values[k][self.sort_key]), reverse=self.sort_reverse)
        changed = {key for key in values if self.values.get(key) != values[key]}
        self.values = values
        for key in changed:
            self.cells[key] = {col: format_cell(col, values[key][col]) for col, _, _ in COLUMNS}
        for gone in set(self.cells) - set(values):
            del self.cells[gone]
        widths = [min(max([len(header)] + [len(self.cells[k].get(col, "")) for k in visible]), MAX_COLUMN_WIDTH)
                  for col, header in self.columns]
        if widths != self.widths or visible != self.keys:
            self.widths, self.keys = widths, list(visible)
            self._strips.clear()
            self.virtual_size = Size(sum(w + 1 for w in widths), len(self.keys) + 1)
            self.cursor = self.keys.index(current) if current in self.keys else min(self.cursor, max(len(self.keys) - 1, 0))
            self.refresh()
        else:
            for key in changed & set(self.keys):
                self._redraw_row(key)
        if current != self.current_key or current in changed:
            self.post_message(self.Highlighted())

    def _redraw_row(self, key: str) -> None:
        for cached in [k for k in self._strips if k[0] == key]:
            del self._strips[cached]
        self.refresh_lines(self.keys.index(key) + 1)  # line 0 is the header

    def _row_strip(self, index: int) -> Strip:
        key = self.keys[index]
        is_cursor = index == self.cursor
        cache_key = (key, is_cursor, index % 2)
        if cache_key not in self._strips:
            cells = self.cells[key]
            text = " ".join((cells.get(col) or ("✓" if col == SELECTED[0] and key in self.selected else ""))
                            .ljust(w)[:w] for (col, _), w in zip(self.columns, self.widths))
            style = CURSOR if is_cursor else ZEBRA if index % 2 else Style()
            self._strips[cache_key] = Strip([Segment(text + " ", style)])
        return self._strips[cache_key]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            header = " ".join(h.ljust(w)[:w] for (_, h), w in zip(self.columns, self.widths)) + " "
            strip = Strip([Segment(header, HEADER)])
        else:
            index = scroll_y + y - 1
            if index >= len(self.keys):
                return Strip.blank(width)
            strip = self._row_strip(index)
        return strip.crop(scroll_x, scroll_x + width).extend_cell_length(width)

    # ---- selection and sorting

    def toggle_selected(self) -> None:
        key = self.current_key
        if key is not None:
            self.selected ^= {key}
            self._redraw_row(key)

    def clear_selection(self) -> None:
        for key in list(self.selected):
            self.selected.discard(key)
            if key in self.keys:
                self._redraw_row(key)

    def sort_by(self, column: str) -> None:
        if self.sort_key == column:
            self.sort_reverse = not self.sort_reverse
        self.sort_key = column

    def column_at(self, x: int) -> str | None:
        """The column under screen column ``x`` of the table."""
        x += int(self.scroll_offset.x)
        for (col, _), w in zip(self.columns, self.widths):
            if x < w + 1:
                return col
            x -= w + 1
        return None

    def column_offset(self, column: str) -> int:
        """Where ``column`` starts, in cells from the table's left edge (unscrolled)."""
        keys = [col for col, _ in self.columns]
        return sum(w + 1 for w in self.widths[: keys.index(column)])

    # ---- moving the cursor

    def _move_to(self, index: int) -> None:
        if not self.keys:
            return
        index = max(0, min(index, len(self.keys) - 1))
        if index == self.cursor:
            return
        old, self.cursor = self.cursor, index
        for row in (old, index):
            if row < len(self.keys):
                self._redraw_row(self.keys[row])
        visible = self.size.height - 1
        if index < self.scroll_offset.y:
            self.scroll_to(y=index, animate=False)
        elif index >= self.scroll_offset.y + visible:
            self.scroll_to(y=index - visible + 1, animate=False)
        self.post_message(self.Highlighted())

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._move_to(self.cursor + direction * max(self.size.height - 2, 1))

    def action_cursor_to(self, index: int) -> None:
        self._move_to(index if index >= 0 else len(self.keys) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            column = self.column_at(event.x)
            if column is not None and column != SELECTED[0]:
                self.post_message(self.HeaderClicked(column))
        else:
            self._move_to(int(self.scroll_offset.y) + event.y - 1)
