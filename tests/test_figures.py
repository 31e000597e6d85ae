"""Every figure, from a small synthetic metrics file and from an empty one (which says so)."""

import matplotlib.image
import pytest

from grokpipe.figures import FIGURES, render
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
        write_shard(path, experiment, runs)
        shards.append(path)
    out = d / "metrics.h5"
    aggregate(shards, out, run_all(steps=500))
    return out


def test_each_figure_renders_from_a_synthetic_store(metrics, tmp_path):
    paths = render(metrics, tmp_path, formats=("png",), dpi=60)
    assert sorted(p.stem for p in paths) == sorted(FIGURES)
    for p in paths:
        image = matplotlib.image.imread(p)
        assert image.shape[0] > 100 and image[..., :3].std() > 0.01, p.name


def test_figures_without_their_runs_say_not_run(tmp_path):
    empty = tmp_path / "metrics.h5"
    aggregate([], empty, None)
    for p in render(empty, tmp_path / "figs", formats=("svg",), dpi=60):
        assert "not run at this scale" in p.read_text(), p.name
