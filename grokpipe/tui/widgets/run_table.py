"""The run table: one row per run, filterable and sortable, updated in place while runs train."""

from __future__ import annotations

from textual.widgets import DataTable

from ..rows import COLUMNS, format_cell, sort_value


class RunTable(DataTable):
    """Rows keyed by ``experiment/shard/run_id``; ``show`` keeps the cursor on the same run."""

    BINDINGS = [("j", "cursor_down", "down"), ("k", "cursor_up", "up")]

    def __init__(self, **kwargs):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.values: dict[str, dict] = {}
        self.selected: set[str] = set()
        self.sort_key: str | None = None
        self.sort_reverse = False

    def on_mount(self) -> None:
        for key, header, _ in COLUMNS:
            self.add_column(header, key=key)
        self.add_column("✓", key="selected")

    @property
    def current_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, values: dict[str, dict], visible: list[str]) -> None:
        """Show ``visible`` rows (in table order after sorting), updating cells that changed."""
        current = self.current_key
        shown = [k.value for k in self.rows]
        if self.sort_key:
            visible = sorted(visible, key=lambda k: sort_value(values[k][self.sort_key]), reverse=self.sort_reverse)
        if shown != visible:
            self.clear()
            for key in visible:
                self.add_row(*self._cells(key, values[key]), key=key)
            if current in visible:
                self.move_cursor(row=visible.index(current), animate=False)
        else:
            for key in visible:
                old = self.values.get(key)
                if old != values[key]:
                    for col, _, _ in COLUMNS:
                        if old is None or old.get(col) != values[key][col]:
                            self.update_cell(key, col, format_cell(col, values[key][col]))
        self.values = values

    def _cells(self, key: str, row: dict) -> list[str]:
        return [format_cell(col, row[col]) for col, _, _ in COLUMNS] + ["✓" if key in self.selected else ""]

    def toggle_selected(self) -> None:
        key = self.current_key
        if key is None:
            return
        self.selected ^= {key}
        self.update_cell(key, "selected", "✓" if key in self.selected else "")

    def clear_selection(self) -> None:
        for key in list(self.selected):
            self.selected.discard(key)
            if key in self.rows:
                self.update_cell(key, "selected", "")

    def sort_by(self, column: str) -> None:
        if self.sort_key == column:
            self.sort_reverse = not self.sort_reverse
        self.sort_key = column
