"""One line per experiment: shards done / running / stalled / unreadable / pending."""

from __future__ import annotations

from collections import Counter

from textual.widgets import Static

from ...store import ShardStatus


class PipelineStatus(Static):
    def show(self, shards: list[ShardStatus], planned: dict[str, int] | None) -> None:
        by_experiment: dict[str, Counter] = {}
        for s in shards:
            by_experiment.setdefault(s.experiment, Counter())[s.state] += 1
        names = sorted(set(by_experiment) | set(planned or {}))
        parts = []
        for name in names:
            c = by_experiment.get(name, Counter())
            seen = sum(c.values())
            pending = max((planned or {}).get(name, seen) - seen, 0)
            bits = [f"[green]{c['done']} done[/]"]
            if c["running"]:
                bits.append(f"[yellow]{c['running']} running[/]")
            if c["stalled"]:
                bits.append(f"[magenta]{c['stalled']} stalled[/]")
            if c["unreadable"]:
                bits.append(f"[red]{c['unreadable']} unreadable[/]")
            if pending:
                bits.append(f"[dim]{pending} pending[/]")
            parts.append(f"[b]{name}[/] " + " ".join(bits))
        self.update("   ".join(parts) or "no shards yet")
