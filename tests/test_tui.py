"""The TUI driven through Textual's Pilot: navigation, filter, sort, selection, overlay, log axis,
smoothing, wall-time axis, saving the plot, the empty state, damaged files, a live writer, the
palette, and snapshots of the main screens."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grokpipe.tui.app import GrokpipeApp
from grokpipe.tui.rows import FilterError, parse_filter
from grokpipe.tui.widgets.run_plot import RunPlot
from grokpipe.tui.widgets.run_table import RunTable

from .fakes import write_shard


@pytest.fixture
def results(tmp_path) -> Path:
    root = tmp_path / "results"
    write_shard(root / "runs" / "ungrok" / "add-aaaaaaaaaa.h5", "ungrok",
                [(d, wd, s) for d in (200, 400, 800) for wd in (0.5, 1.0) for s in (0, 1)])
    write_shard(root / "runs" / "grok" / "add-bbbbbbbbbb.h5", "grok", [(1400, 1.0, 0), (1400, 1.0, 1)])
    return root


async def _settle(pilot, seconds=0.4):
    await pilot.pause(seconds)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.1)


async def test_navigation_filter_sort_selection_overlay_and_log_axis(results):
    app = GrokpipeApp(results)
    async with app.run_test(size=(150, 40)) as pilot:
        await _settle(pilot)
        table = app.screen.query_one(RunTable)
        plot = app.screen.query_one(RunPlot)
        assert table.row_count == 14
        first = table.current_key
        await pilot.press("j", "j")
        assert table.current_key != first
        await pilot.press("space", "k", "space")
        assert len(table.selected) == 2
        await pilot.pause(0.1)
        assert len(plot.runs) == 2  # overlay of the two selected runs
        await pilot.press("c")
        assert not table.selected and len(plot.runs) == 1
        await pilot.press("1")
        assert plot.view == "loss"
        await pilot.press("x")
        assert plot.log_x
        await pilot.press("slash", *"exp=ungrok wd=1 D<800", "enter")
        await pilot.pause(0.1)
        assert table.row_count == 4
        assert all(table.values[k]["weight_decay"] == 1.0 for k in table.keys)
        # click the "D" header: sort by D; click again: reversed
        x = table.column_offset("n_train") + 1
        await pilot.click("#runs", offset=(x, 0))
        await pilot.pause(0.1)
        assert [table.values[k]["n_train"] for k in table.keys] == [200, 200, 400, 400]
        await pilot.click("#runs", offset=(x, 0))
        await pilot.pause(0.1)
        assert [table.values[k]["n_train"] for k in table.keys] == [400, 400, 200, 200]
        # clicking a row moves the cursor there
        await pilot.click("#runs", offset=(3, 3))
        await pilot.pause(0.1)
        assert table.current_key == table.keys[2]


async def test_a_bad_filter_is_reported_not_raised(results):
    app = GrokpipeApp(results)
    async with app.run_test(size=(150, 40)) as pilot:
        await _settle(pilot)
        await pilot.press("slash", *"exp=grok")
        await pilot.pause(0.1)
        assert app.screen.query_one(RunTable).row_count == 2
        await pilot.press(*" D=x")
        await pilot.pause(0.1)
        # "D=x" is refused; the last good filter ("exp=grok D": D as a bare word, matching task "add") stays
        assert app.screen.query_one(RunTable).row_count == 2
        assert not app._notifications  # no error toasts while typing
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert any("needs a number" in n.message for n in app._notifications)


async def test_an_empty_results_directory_says_how_to_make_results(tmp_path):
    app = GrokpipeApp(tmp_path / "nothing-here")
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(pilot)
        empty = app.screen.query_one("#empty")
        assert empty.display
        assert "snakemake --cores all figures" in str(empty.render())


async def test_damaged_files_are_rows_marked_unreadable_and_every_healthy_run_is_listed(results):
    """A truncated shard, a byte-flipped one and a crafted one (history is a vector): each is one
    'unreadable' row with its reason; the 14 healthy runs are all there; nothing hangs or crashes."""
    import h5py

    good = (results / "runs" / "grok" / "add-bbbbbbbbbb.h5").read_bytes()
    (results / "runs" / "grok" / "add-cccccccccc.h5").write_bytes(good[:2048])
    flipped = bytearray(good)
    flipped[12] ^= 0xFF  # inside the superblock, whose checksum then fails
    (results / "runs" / "grok" / "add-dddddddddd.h5").write_bytes(bytes(flipped))
    crafted = results / "runs" / "grok" / "add-eeeeeeeeee.h5"
    write_shard(crafted, "grok", [(1400, 1.0, 2)])
    with h5py.File(crafted, "r+") as f:
        del f["history"]
        f["history"] = [1, 2, 3]
    app = GrokpipeApp(results)
    async with app.run_test(size=(150, 40)) as pilot:
        await _settle(pilot, 1.0)
        table = app.screen.query_one(RunTable)
        states = [table.values[k]["state"] for k in table.keys]
        assert states.count("unreadable") == 3 and states.count("done") == 14
        await pilot.press("slash", *"state=unreadable", "enter")
        await pilot.pause(0.2)
        assert table.row_count == 3
        assert "cannot read" in str(app.screen.query_one("#details").render())  # the reason, beside the plot


async def test_smoothing_the_wall_time_axis_and_saving_the_plot(results):
    app = GrokpipeApp(results)
    async with app.run_test(size=(150, 40)) as pilot:
        await _settle(pilot)
        plot = app.screen.query_one(RunPlot)
        raw = plot.series()
        await pilot.press("s")
        assert plot.smoothed
        smoothed = plot.series()
        assert [label for label, _, _ in smoothed] == [label for label, _, _ in raw]
        assert not np.array_equal(raw[1][2], smoothed[1][2]) and raw[1][2][0] == smoothed[1][2][0]
        await pilot.press("w")
        assert plot.wall_time and plot.x_label() == "wall time (s)"
        run = plot.runs[0][1]
        assert np.array_equal(plot.series()[0][1], run.eval_wall[np.isfinite(run.eval_wall)])
        await pilot.press("w", "p")
        await _settle(pilot)
        (saved,) = (results / "plots").glob("accuracy-*.png")
        from grokpipe.files import FORMATS, file_format

        assert file_format(saved) == FORMATS["figure"]


async def test_every_key_of_the_help_screen_is_in_the_palette_and_the_help(results):
    from grokpipe.tui.screens.browse import KEYS
    from grokpipe.tui.screens.help import help_text

    text = help_text()
    assert all(what in text for _, _, _, what in KEYS)
    app = GrokpipeApp(results)
    async with app.run_test(size=(150, 40)) as pilot:
        await _settle(pilot)
        names = [name for name, _, _ in app.screen.commands()]
        assert {"Loss", "Accuracy", "Norm", "Circuits", "Smooth", "Save plot"} <= set(names)
        commands = dict((name, callback) for name, _, callback in app.screen.commands())
        commands["Loss"]()
        await pilot.pause(0.1)
        assert app.screen.query_one(RunPlot).view == "loss"


WRITER = """
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[3])
from tests.fakes import write_shard
writer = write_shard(Path(sys.argv[1]), "grok", [(1000, 1.0, 0)], evals=3, done=False)
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.02)
for i in range(3, 8):
    writer.append(i * 100, {m: np.array([0.5]) for m in writer.metrics}, 1000, 5.0 + i)
    time.sleep(0.05)
writer.close()
"""


async def test_following_a_live_writer_shows_new_points(tmp_path):
    """A writer process appends to its SWMR shard file; the app shows the new points."""
    results = tmp_path / "results"
    shard = results / "runs" / "grok" / "add-dddddddddd.h5"
    go = tmp_path / "go"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(shard), str(go), str(Path(__file__).parents[1])])
    try:
        app = GrokpipeApp(results, refresh_seconds=0.2)
        async with app.run_test(size=(150, 40)) as pilot:
            for _ in range(100):  # until the writer has created its file and the app has read it
                await _settle(pilot, 0.1)
                if app.screen.runs:
                    break
            screen = app.screen
            key = next(iter(screen.runs))
            assert len(screen.runs[key].eval_step) == 3
            assert screen.values[key]["state"] == "running"
            go.touch()
            writer.wait(timeout=30)
            await _settle(pilot, 0.6)
            assert len(screen.runs[key].eval_step) == 8
            assert screen.values[key]["progress"] == "700/1000"
    finally:
        writer.kill()


def test_filter_language():
    assert [c.key for c in parse_filter("wd=1 D<2000 exp=ungrok")] == ["weight_decay", "n_train", "experiment"]
    assert parse_filter("grok")[0].holds({"experiment": "ungrok", "task": "add", "shard": "x"})
    with pytest.raises(FilterError):
        parse_filter("D<<3")
    with pytest.raises(FilterError, match="needs a number"):
        parse_filter("wd=heavy")
    with pytest.raises(FilterError, match="unknown key"):
        parse_filter("colour=blue")
    row = {"n_train": 500, "weight_decay": 1.0}
    assert parse_filter("D>=500")[0].holds(row) and not parse_filter("D>500")[0].holds(row)


def test_a_run_that_stopped_before_its_live_shard_shows_stopped_at_its_own_step(tmp_path):
    from grokpipe.monitor import ResultsScanner
    from grokpipe.tui.rows import row_values

    writer = write_shard(tmp_path / "runs" / "ungrok" / "add-eeeeeeeeee.h5", "ungrok", [(400, 1.0, 0), (800, 1.0, 0)],
                         evals=5, done=False)
    for step in (500, 600):  # the first run stopped (converged) at step 400, the shard's fifth evaluation
        writer.append(step, {m: np.array([np.nan, 0.5]) for m in writer.metrics}, 800, step / 100)
    writer.set_progress(650, 800, 6.5, done=False)
    (shard,) = ResultsScanner(tmp_path).scan()
    writer.close()
    stopped, going = (row_values(shard, run) for run in shard.runs)
    assert (stopped["state"], stopped["progress"], stopped["eta"]) == ("stopped", "400/800", "")
    assert (going["state"], going["progress"]) == ("running", "650/800") and going["eta"]
    assert parse_filter("state=stopped")[0].holds(stopped) and not parse_filter("state=stopped")[0].holds(going)


def test_snapshot_main_screen(results, snap_compare):
    async def settle(pilot):
        await _settle(pilot)
        await pilot.press("j", "space", "j")
        await pilot.pause(0.2)

    assert snap_compare(GrokpipeApp(results, refresh_seconds=3600), terminal_size=(150, 40), run_before=settle)


def test_snapshot_help_screen(results, snap_compare):
    async def settle(pilot):
        await _settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(GrokpipeApp(results, refresh_seconds=3600), terminal_size=(150, 40), run_before=settle)


def test_the_headless_core_never_imports_textual_and_figures_never_import_torch():
    core = ("grokpipe.cli", "grokpipe.train", "grokpipe.store", "grokpipe.config", "grokpipe.analysis",
            "grokpipe.claims", "grokpipe.dcrit", "grokpipe.monitor", "grokpipe.simulation", "grokpipe.circuits",
            "grokpipe.bench", "grokpipe.figures")
    code = ("import sys, importlib\n"
            f"for m in {core!r}: importlib.import_module(m)\n"
            "assert 'textual' not in sys.modules, 'textual imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    figures = ("import sys, importlib, grokpipe.figures as f\n"
               "[importlib.import_module(f'grokpipe.figures.{n}') for n in f.FIGURES]\n"
               "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", figures], check=True)
