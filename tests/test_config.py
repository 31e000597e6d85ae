"""The plan: config -> shards, with the invariants the DAG relies on."""

import math
from pathlib import Path

import yaml

from grokpipe.config import FROM_PRETRAIN, load_plan, plan_cost, validate_config

REPO = Path(__file__).resolve().parents[1]


def _plan(path, scale=None):
    config = yaml.safe_load(Path(path).read_text())
    if scale:
        config["scale"] = scale
    validate_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    return load_plan(config)


def test_every_shard_respects_the_shard_size_and_shares_task_and_steps():
    plan = _plan(REPO / "config.yaml")
    for job in plan.jobs.values():
        assert 1 <= len(job.spec.runs) <= plan.settings["shard_size"]
        assert job.output == f"results/runs/{job.experiment}/{job.name}.h5" and job.name.startswith(job.spec.task)


def test_steps_follow_lr_wd_steps():
    plan = _plan(REPO / "config.yaml")
    grid = plan.settings["experiments"]["ungrok"]
    for job in plan.experiment_jobs("ungrok"):
        for run in job.spec.runs:
            assert job.spec.steps == math.ceil(grid["lr_wd_steps"] / (grid["lr"] * run.weight_decay))


def test_runs_starting_from_pretrain_find_their_seed_in_their_pretrain_shard():
    plan = _plan(REPO / "config.yaml")
    for experiment in ("ungrok", "ungrok_tasks", "efficiency_gen"):
        for job in plan.experiment_jobs(experiment):
            source = plan.job(FROM_PRETRAIN, job.init_shard)
            assert source.spec.task == job.spec.task
            assert {r.seed for r in job.spec.runs} <= {r.seed for r in source.spec.runs}
            assert f"--init-from results/checkpoints/pretrain/{job.init_shard}.pt" in job.train_args("cpu")


def test_shard_names_change_only_with_what_changes_the_numbers():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    names = set(n for _, n in load_plan(config).jobs)
    config["scales"]["quick"]["experiments"]["grok"]["steps"] = 9999  # more steps: same shard, resumed
    assert set(n for _, n in load_plan(config).jobs) == names
    config["scales"]["quick"]["experiments"]["grok"]["lr"] = 5e-3  # another lr: another shard
    assert set(n for _, n in load_plan(config).jobs) != names


def test_both_scales_plan_and_cost_something():
    for scale in ("quick", "paper"):
        cost = plan_cost(_plan(REPO / "config.yaml", scale))
        assert set(cost) == {"grok", "pretrain", "ungrok", "ungrok_tasks", "semigrok", "efficiency_mem", "efficiency_gen"}
        assert all(row["flops"] > 0 and row["runs"] >= row["shards"] for row in cost.values())
