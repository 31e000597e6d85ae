"""The plan: config -> shards, with the invariants the DAG relies on, and one source for each fact."""

import copy
import math
from dataclasses import replace
from pathlib import Path

import yaml

from grokpipe.config import (
    CHECKPOINT_FILE,
    EXPERIMENTS,
    FROM_PRETRAIN,
    SHARD_FILE,
    load_plan,
    plan_cost,
    validate_config,
)
from grokpipe.spec import NUMERICS_VERSION, ShardSpec
from grokpipe.tasks import TASKS

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def _config(scale=None):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    if scale:
        config["scale"] = scale
    validate_config(config, SCHEMA)
    return config


def test_the_schema_knows_exactly_the_tasks_and_experiments_the_code_knows():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["$defs"]["grid"]["properties"]["tasks"]["items"]["enum"] == list(TASKS)
    assert list(schema["$defs"]["scale"]["properties"]["experiments"]["properties"]) == list(EXPERIMENTS)


def test_every_shard_respects_the_shard_size_and_shares_task_and_steps():
    plan = load_plan(_config())
    for job in plan.jobs.values():
        assert 1 <= len(job.spec.runs) <= plan.settings["shard_size"]
        assert job.output == SHARD_FILE.format(experiment=job.experiment, shard=job.name)
        assert job.checkpoint == CHECKPOINT_FILE.format(experiment=job.experiment, shard=job.name)
        assert job.name.startswith(job.spec.task)


def test_shards_are_cut_by_the_cost_of_a_step():
    config = _config()
    plan = load_plan(config)
    for job in plan.jobs.values():
        grid = config["scales"]["quick"]["experiments"][job.experiment]
        grids = grid if isinstance(grid, list) else [grid]
        limit = min(g.get("shard_ms_per_step", plan.settings["shard_ms_per_step"]) for g in grids)
        ms = [1000 * plan.throughput.step_seconds(replace(job.spec, runs=(r,))) for r in job.spec.runs]
        # a shard never exceeds its limit by more than half of one of its runs
        assert sum(ms) <= 1.5 * limit or len(ms) == 1 or sum(ms) - max(ms) / 2 <= 1.5 * limit


def test_priority_puts_pretraining_and_its_longest_dependent_first():
    plan = load_plan(_config())
    seconds, chain = plan.critical_path()
    assert chain[0].experiment == FROM_PRETRAIN and chain[1].init_shard == chain[0].name
    assert seconds == plan.priority(chain[0]) == plan.seconds(chain[0]) + plan.seconds(chain[1])
    for job in plan.jobs.values():
        assert plan.priority(job) >= plan.seconds(job)
        resources = plan.resources(job)
        assert resources["runtime"] >= plan.seconds(job) / 60 and resources["gpu"] == 0


def test_a_runtime_limit_caps_every_request_and_says_how_many_resumptions_a_long_job_needs():
    plan = load_plan(_config("paper"))
    limit = plan.settings["resources"]["runtime_max_minutes"]
    long_jobs = [j for j in plan.jobs.values() if plan.wanted_minutes(j) > limit]
    assert long_jobs  # the paper scale's semi-grokking shards outlast a day
    for job in plan.jobs.values():
        wanted, retries = plan.wanted_minutes(job), plan.retries_needed(job)
        assert plan.resources(job)["runtime"] == min(math.ceil(wanted), limit)
        assert retries * limit < wanted <= (retries + 1) * limit  # 1 + retries runs of the limit cover it, one fewer not
    unlimited = copy.deepcopy(_config("paper"))
    del unlimited["scales"]["paper"]["resources"]["runtime_max_minutes"]
    assert not any(load_plan(unlimited).retries_needed(j) for j in long_jobs)


def test_steps_follow_lr_wd_steps():
    plan = load_plan(_config())
    grid = plan.settings["experiments"]["ungrok"]
    for job in plan.experiment_jobs("ungrok"):
        for run in job.spec.runs:
            assert job.spec.steps == math.ceil(grid["lr_wd_steps"] / (grid["lr"] * run.weight_decay))


def test_runs_starting_from_pretrain_find_their_seed_in_their_pretrain_shard():
    plan = load_plan(_config())
    for experiment in ("ungrok", "ungrok_tasks", "efficiency_gen"):
        for job in plan.experiment_jobs(experiment):
            source = plan.job(FROM_PRETRAIN, job.init_shard)
            assert source.spec.task == job.spec.task
            assert {r.seed for r in job.spec.runs} <= {r.seed for r in source.spec.runs}
            assert job.init_checkpoint == source.checkpoint


def test_shard_names_change_only_with_what_changes_the_numbers():
    config = _config()
    names = set(n for _, n in load_plan(config).jobs)
    more_steps = copy.deepcopy(config)
    more_steps["scales"]["quick"]["experiments"]["grok"]["steps"] = 9999  # more steps: same shard, resumed
    assert set(n for _, n in load_plan(more_steps).jobs) == names
    other_lr = copy.deepcopy(config)
    other_lr["scales"]["quick"]["experiments"]["grok"]["lr"] = 5e-3  # another lr: another shard
    assert set(n for _, n in load_plan(other_lr).jobs) != names


def test_settling_the_logit_renames_only_the_shards_it_is_turned_on_for():
    """A shard that stopped its runs by the criterion without the logit cannot restart them, so
    turning settle_logit on makes new shards; every other shard keeps its name (and its results)."""
    config = _config()
    jobs = load_plan(config).jobs
    settling = {key for key, job in jobs.items() if job.spec.settle_logit}
    assert {experiment for experiment, _ in settling} == {"efficiency_mem", "efficiency_gen"}
    for experiment, grids in config["scales"]["quick"]["experiments"].items():
        for grid in grids if isinstance(grids, list) else [grids]:
            grid["settle_logit"] = False
    without = load_plan(config).jobs
    assert {key for key in without if key not in jobs} and all(
        key in without for key in jobs if key not in settling)
    spec = next(job.spec for key, job in jobs.items() if key in settling)
    assert ShardSpec.from_json(spec.to_json()) == spec


def test_the_numerics_version_is_part_of_every_shards_name(monkeypatch):
    import grokpipe.spec

    config = _config()
    names = {key: job.name for key, job in load_plan(config).jobs.items()}
    monkeypatch.setattr(grokpipe.spec, "NUMERICS_VERSION", NUMERICS_VERSION + 1)
    renamed = {key[0]: job.name for key, job in load_plan(config).jobs.items()}
    assert not set(names.values()) & set(renamed.values())


def test_the_adaptive_stage_is_placed_by_its_band():
    plan = load_plan(_config())
    assert plan.adaptive is not None and not plan.experiment_jobs("semigrok")
    assert plan.adaptive_jobs({"sizes": []}) == {}
    jobs = plan.adaptive_jobs({"sizes": [800, 850, 900]})
    sizes = {r.n_train for job in jobs.values() for r in job.spec.runs}
    seeds = {r.seed for job in jobs.values() for r in job.spec.runs}
    assert sizes == {800, 850, 900} and seeds == set(plan.adaptive["seeds"])
    (experiment, name), job = next(iter(jobs.items()))
    assert plan.job(experiment, name, {"sizes": [800, 850, 900]}) == job


def test_a_scales_process_settings_reach_every_training_job_as_flags():
    config = _config()
    assert load_plan(config).device_args == "cpu"  # the quick scale sets neither: grokpipe train's defaults
    config["scales"]["quick"].update(backend="gather", deterministic=True)
    assert load_plan(config).device_args == "cpu --backend gather --deterministic"


def test_both_scales_plan_and_cost_something():
    for scale in ("quick", "paper"):
        plan = load_plan(_config(scale))
        cost = plan_cost(plan)
        assert set(cost) <= set(EXPERIMENTS) and {"grok", "pretrain", "ungrok", "efficiency_mem"} <= set(cost)
        assert all(row["flops"] > 0 and row["runs"] >= row["shards"] and row["seconds"] > 0 for row in cost.values())


def test_plan_prices_converging_experiments_at_their_caps_and_says_so(capsys):
    from grokpipe.cli import main

    plan = load_plan(_config())
    cost = plan_cost(plan)
    stopping = {job.experiment for job in plan.jobs.values() if job.spec.stop_when_converged}
    assert stopping and {e for e, row in cost.items() if row["stops_early"]} == stopping
    assert main(["plan", "--config", str(REPO / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "makespan at least" in out and "if every run trains to its cap" in out
    (caps_line,) = [line for line in out.splitlines() if "these steps and hours are caps" in line]
    assert set(caps_line.split(":")[0].split(", ")) == stopping
