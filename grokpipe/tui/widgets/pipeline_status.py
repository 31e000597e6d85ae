"""One compact line per results directory: per experiment, shards done / running / stalled /
unreadable / pending (symbols explained in the help screen)."""

from __future__ import annotations

from collections import Counter

from textual.widgets import Static

from ...monitor import ShardStatus

SYMBOLS = (("done", "✓", "green"), ("running", "▶", "yellow"), ("stalled", "⏸", "magenta"),
           ("unreadable", "✗", "red"), ("pending", "…", "dim"))


class PipelineStatus(Static):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.text = ""

    def show(self, shards: list[ShardStatus], planned: dict[str, int] | None) -> None:
        by_experiment: dict[str, Counter] = {}
        for s in shards:
            by_experiment.setdefault(s.experiment, Counter())[s.state] += 1
        parts = []
        for name in sorted(set(by_experiment) | set(planned or {})):
            counts = by_experiment.get(name, Counter())
            counts["pending"] = max((planned or {}).get(name, 0) - sum(counts.values()), 0)
            bits = [f"[{colour}]{counts[state]}{symbol}[/]" for state, symbol, colour in SYMBOLS if counts[state]]
            parts.append(f"[b]{name}[/] " + " ".join(bits))
        text = "  ".join(parts) or "no shards yet"
        if text != self.text:  # render only what changed
            self.text = text
            self.update(text)
