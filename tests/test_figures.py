"""Figures checked by the data they plot (not their pixels), from a synthetic metrics file whose
runs are known; and from an empty one, where every panel says what is missing."""

import importlib

import matplotlib.colors
import numpy as np
import pytest

from grokpipe.analysis import efficiency_triples, transitions
from grokpipe.figures import FIGURES, code_dependencies, render
from grokpipe.figures._common import FigureStore
from grokpipe.simulation import run_all
from grokpipe.store import aggregate

from .fakes import write_shard


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    d = tmp_path_factory.mktemp("store")
    shards = []
    for experiment, runs in {
        "ungrok": [(x, wd, s) for x in (100, 200, 400, 800) for wd in (0.5, 1.0, 2.0) for s in (0, 1)],
        "semigrok": [(850, 1.0, s) for s in range(4)],
        "efficiency_mem": [(x, wd, 0) for x in (200, 400, 800) for wd in (0.5, 1.0, 2.0)],
        "grok": [(1400, 1.0, 0)],
    }.items():
        path = d / "runs" / experiment / "add-0123456789.h5"
        write_shard(path, experiment, runs, evals=40)
        shards.append(path)
    out = d / "metrics.h5"
    aggregate(shards, out, run_all(steps=500))
    return out


def _draw(name, metrics):
    return importlib.import_module(f"grokpipe.figures.{name}").draw(FigureStore(metrics))


def test_every_figure_renders_and_is_tagged_as_grokpipes(metrics, tmp_path):
    from grokpipe.files import FORMATS, file_format

    paths = render(metrics, tmp_path, formats=("png", "pdf"), dpi=40)
    assert sorted({p.stem for p in paths}) == sorted(FIGURES)
    assert all(file_format(p) == FORMATS["figure"] for p in paths)


def test_fig4_plots_each_weight_decays_mean_transition_on_a_log_axis(metrics):
    store = FigureStore(metrics)
    (ax,) = _draw("fig04_ungrokking", metrics).axes
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    for t in transitions(store.runs("ungrok")):
        line = lines[f"wd {t.weight_decay:g}"]
        assert np.array_equal(line.get_xdata(), t.sizes)
        assert np.allclose(line.get_ydata(), t.mean_acc)


def test_fig7_draws_every_ungrok_run_of_one_weight_decay_coloured_by_its_size(metrics):
    store = FigureStore(metrics)
    ax = _draw("fig07_ungrok_runs", metrics).axes[0]
    runs = store.runs("ungrok", weight_decay=1.0)
    drawn = ax.get_lines()
    assert len(drawn) == len(runs)
    plotted = sorted(tuple(line.get_ydata()) for line in drawn)
    assert plotted == sorted(tuple(r.curves["test_acc"]) for r in runs)
    colours = {tuple(matplotlib.colors.to_rgba(line.get_color())) for line in drawn}
    assert len(colours) == len({r.hparams["n_train"] for r in runs})  # one colour per D'


def test_fig2_plots_the_simulations_curves(metrics):
    simulation = FigureStore(metrics).simulation
    axes = _draw("fig02_simulation", metrics).axes
    for ax, case in zip(axes[:3], simulation["cases"]):
        train = next(line for line in ax.get_lines() if line.get_label() == "train loss")
        assert np.allclose(train.get_ydata(), case["curves"]["train_loss"])
        assert ax.get_yscale() == "log"


def test_fig3_scatters_the_converged_random_label_runs(metrics):
    from grokpipe.analysis import split_converged

    store = FigureStore(metrics)
    ax = _draw("fig03_efficiency", metrics).axes[0]
    converged, _ = split_converged(store.runs("efficiency_mem"))
    triples = efficiency_triples(converged)
    offsets = ax.collections[0].get_offsets()
    assert sorted(map(tuple, np.asarray(offsets))) == sorted(zip(triples[:, 1], triples[:, 0]))
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_fig1_shows_the_grok_runs_test_accuracy(metrics):
    store = FigureStore(metrics)
    fig = _draw("fig01_phenomena", metrics)
    (grok,) = store.runs("grok")
    curves = [tuple(line.get_ydata()) for ax in fig.axes for line in ax.get_lines()]
    assert tuple(grok.curves["test_acc"]) in curves


def test_figures_without_their_runs_say_not_run(tmp_path):
    empty = tmp_path / "metrics.h5"
    aggregate([], empty, None)
    for p in render(empty, tmp_path / "figs", formats=("svg",), dpi=60):
        assert "not run at this scale" in p.read_text(), p.name


def test_each_figure_depends_on_the_code_it_imports():
    fig8 = code_dependencies("grokpipe.figures.fig08_ungrok_tasks")
    assert any(path.endswith("grokpipe/tasks.py") for path in fig8)  # Fig 8 imports the task formulas
    assert any(path.endswith("grokpipe/figures/_panels.py") for path in fig8)
    assert not any(path.endswith("fig04_ungrokking.py") for path in fig8)
    fig11 = code_dependencies("grokpipe.figures.fig11_dcrit_prediction")
    assert any(path.endswith("grokpipe/dcrit.py") for path in fig11)
    claims = code_dependencies("grokpipe.claims")
    assert any(path.endswith("grokpipe/store.py") for path in claims)
    assert not any("/figures/" in path for path in claims)


def test_fig8_shows_each_tasks_own_runs_and_the_s4_stand_in_for_s5(tmp_path):
    shards = []
    for task, sizes in {"mul": (100, 200, 400), "s4_mul": (60, 120, 240)}.items():
        path = tmp_path / "runs" / "ungrok_tasks" / f"{task}-0123456789.h5"
        write_shard(path, "ungrok_tasks", [(d, wd, 0) for d in sizes for wd in (1.0, 2.0)], task=task)
        shards.append(path)
    aggregate(shards, tmp_path / "metrics.h5", None)
    store = FigureStore(tmp_path / "metrics.h5")
    axes = _draw("fig08_ungrok_tasks", tmp_path / "metrics.h5").axes
    panels = {ax.get_title(): ax for ax in axes}
    for task, title in (("mul", "x*y mod p"), ("s4_mul", "x y in S4 (quick-scale stand-in for S5)")):
        lines = {line.get_label(): line for line in panels[title].get_lines()}
        for t in transitions(store.runs("ungrok_tasks", task=task)):
            assert np.array_equal(lines[f"wd {t.weight_decay:g}"].get_xdata(), t.sizes), task
    assert "not run at this scale" in panels["x y x^-1 in S5"].texts[0].get_text()
