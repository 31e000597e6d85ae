"""The pipeline's plan: ``config.yaml`` expanded into shards of runs, with their paths, costs,
priorities and resources.

The config has scales under ``scales:`` and a switch ``scale:``. Each scale names its model,
its modulus and its experiments; every experiment is a grid (tasks x training set sizes x weight
decays x seeds) trained from a random start or from the ``pretrain`` checkpoint of the same task
and seed. :func:`load_plan` turns each grid into shards: runs of one task and step count, sorted
by training set size and cut so that no shard exceeds ``shard_size`` runs or ``shard_ms_per_step``
estimated milliseconds per step (a shard is one job: cost-sized jobs keep every core busy).

This module is the only place that knows the config's shape and the results layout; the Snakefile
asks it for paths, shard names, specs, priorities and resources, and holds no science itself.
The JSON schema (workflow/schemas/config.schema.yaml) checks the config's shape and fills its
defaults; :meth:`grokpipe.spec.ShardSpec.validate` checks every value that reaches a shard.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import GrokpipeError
from .spec import BACKENDS, EvalSchedule, ModelConfig, RunSpec, ShardSpec, stable_hash
from .tasks import make_dataset, n_elements

EXPERIMENTS = ("grok", "pretrain", "ungrok", "ungrok_tasks", "semigrok_scan", "semigrok", "efficiency_mem",
               "efficiency_gen")
FROM_PRETRAIN = "pretrain"
# semi-grokking's second stage takes its training set sizes from where the first stage's runs
# turned from chance to full accuracy (grokpipe.analysis.semigrok_band)
ADAPTIVE, ADAPTIVE_SOURCE = "semigrok", "semigrok_scan"

# The results layout: every path is built from these patterns (Snakemake uses them as wildcards).
RESULTS = "results"
SHARD_FILE = RESULTS + "/runs/{experiment}/{shard}.h5"
CHECKPOINT_FILE = RESULTS + "/checkpoints/{experiment}/{shard}.pt"
SPEC_FILE = RESULTS + "/specs/{experiment}/{shard}.json"
SHARD_LOG = RESULTS + "/logs/{experiment}/{shard}.log"
BAND_FILE = RESULTS + "/semigrok_band.json"
HASH_LENGTH = 10
SHARD_NAME = r"[a-z0-9_]+-[0-9a-f]{%d}" % HASH_LENGTH


@dataclass(frozen=True)
class ShardJob:
    experiment: str
    name: str
    spec: ShardSpec
    init_shard: str | None  # name of the pretrain shard this one starts from

    def path(self, pattern: str) -> str:
        return pattern.format(experiment=self.experiment, shard=self.name)

    @property
    def output(self) -> str:
        return self.path(SHARD_FILE)

    @property
    def checkpoint(self) -> str:
        return self.path(CHECKPOINT_FILE)

    @property
    def init_checkpoint(self) -> str | None:
        return CHECKPOINT_FILE.format(experiment=FROM_PRETRAIN, shard=self.init_shard) if self.init_shard else None


@dataclass(frozen=True)
class Throughput:
    """How fast this scale's device trains, for pricing shards: a step of a shard of M models with
    training sets D_1..D_M takes ``M / model_steps_per_s + sum(D) / example_steps_per_s`` seconds,
    and an evaluation ``M * n_examples / (3 example_steps_per_s)`` (a forward pass only)."""

    model_steps_per_s: float
    example_steps_per_s: float
    source: str = "config"

    def step_seconds(self, spec: ShardSpec) -> float:
        return len(spec.runs) / self.model_steps_per_s + sum(r.n_train for r in spec.runs) / self.example_steps_per_s

    def eval_seconds(self, spec: ShardSpec) -> float:
        return len(spec.runs) * make_dataset(spec.task, spec.p).n_examples / (3 * self.example_steps_per_s)

    def seconds(self, spec: ShardSpec) -> float:
        return spec.steps * self.step_seconds(spec) + spec.schedule.count(spec.steps) * self.eval_seconds(spec)


@dataclass(frozen=True)
class Plan:
    scale: str
    settings: dict
    jobs: dict[tuple[str, str], ShardJob]
    throughput: Throughput  # prices jobs; the config's, or a measured one (grokpipe plan --throughput)
    adaptive: dict | None = None  # the second semi-grokking stage's grid, placed by the first stage

    def experiment_jobs(self, experiment: str) -> list[ShardJob]:
        return [j for (e, _), j in self.jobs.items() if e == experiment]

    def job(self, experiment: str, name: str, band: dict | None = None) -> ShardJob:
        jobs = self.jobs if band is None else {**self.jobs, **self.adaptive_jobs(band)}
        try:
            return jobs[(experiment, name)]
        except KeyError:
            raise GrokpipeError(f"no shard {experiment}/{name} in the {self.scale} plan") from None

    @property
    def device_args(self) -> str:
        """What follows `grokpipe train --device` in every training job: the scale's device, then its
        process settings as flags (just the device when it sets none, so older results stay current)."""
        backend = self.settings.get("backend")
        return " ".join([self.settings["device"]] + ([f"--backend {backend}"] if backend else [])
                        + (["--deterministic"] if self.settings.get("deterministic") else []))

    def outputs(self) -> list[str]:
        return [j.output for j in self.jobs.values()]

    def init_output(self, job: ShardJob) -> list[str]:
        return [self.job(FROM_PRETRAIN, job.init_shard).output] if job.init_shard else []

    # ---- the adaptive stage

    def adaptive_jobs(self, band: dict) -> dict[tuple[str, str], ShardJob]:
        """The second semi-grokking stage's shards, at the sizes ``band`` (from the first stage) gives."""
        if self.adaptive is None:
            return {}
        sizes = band.get("sizes", [])
        if not sizes:
            return {}
        jobs: dict = {}
        grid = {**self.adaptive, "n_train": sizes}
        _expand_grid(ADAPTIVE, grid, f"scales.{self.scale}.experiments.{ADAPTIVE}", self.settings, jobs, {})
        return jobs

    # ---- cost, priority, resources

    def seconds(self, job: ShardJob) -> float:
        return self.throughput.seconds(job.spec)

    @functools.cached_property
    def _dependents(self) -> dict[str, list[ShardJob]]:
        out: dict[str, list[ShardJob]] = {}
        for job in self.jobs.values():
            if job.init_shard:
                out.setdefault(job.init_shard, []).append(job)
        return out

    def priority(self, job: ShardJob) -> float:
        """The longest chain of estimated seconds that starts with this job: Snakemake starts the
        highest first, so the critical path (pretraining, then what depends on it) never waits."""
        dependents = self._dependents.get(job.name, []) if job.experiment == FROM_PRETRAIN else []
        return self.seconds(job) + max((self.seconds(j) for j in dependents), default=0.0)

    def critical_path(self) -> tuple[float, list[ShardJob]]:
        """Estimated seconds and jobs of the longest dependency chain of training shards."""
        best = max(self.jobs.values(), key=self.priority, default=None)
        if best is None:
            return 0.0, []
        dependents = self._dependents.get(best.name, []) if best.experiment == FROM_PRETRAIN else []
        return self.priority(best), [best] + ([max(dependents, key=self.seconds)] if dependents else [])

    def wanted_minutes(self, job: ShardJob) -> float:
        """The minutes a job should be allowed, were there no limit: the estimate, with margin."""
        r = self.settings["resources"]
        return r["runtime_margin"] * self.seconds(job) / 60 + r["runtime_min_minutes"]

    def resources(self, job: ShardJob) -> dict:
        """What a training job asks a cluster for: GPUs, memory, and minutes (the estimate, with margin,
        at most ``runtime_max_minutes``)."""
        r = self.settings["resources"]
        minutes = min(self.wanted_minutes(job), r.get("runtime_max_minutes", math.inf))
        return {"gpu": r["gpu"], "mem_mb": r["mem_mb"], "runtime": max(1, math.ceil(minutes))}

    def retries_needed(self, job: ShardJob) -> int:
        """How many times a job stopped at ``runtime_max_minutes`` must resume to finish (0 without a
        limit): Snakemake's ``--retries`` must be at least this for the longest job."""
        limit = self.settings["resources"].get("runtime_max_minutes")
        return max(0, math.ceil(self.wanted_minutes(job) / limit) - 1) if limit else 0


def _fail(where: str, what: str):
    raise GrokpipeError(f"config {where}: {what}")


def _sizes(exp: dict, task: str, p: int) -> list[int]:
    total = make_dataset(task, p).n_examples
    if "n_train" in exp:
        sizes = [int(d) for d in exp["n_train"]]
    else:
        sizes = [max(1, round(f * total)) for f in exp["n_train_fraction"]]
    return sorted(set(sizes))


def _steps(exp: dict, lr: float, wd: float, where: str) -> int:
    if "steps" in exp:
        return int(exp["steps"])
    if wd <= 0:
        _fail(where, "lr_wd_steps needs every weight decay > 0")
    return max(1, math.ceil(exp["lr_wd_steps"] / (lr * wd)))


def load_plan(config: dict) -> Plan:
    """Expand a schema-checked config (as Snakemake loaded it) into shards; raise GrokpipeError on a bad value."""
    scale = config["scale"]
    scales = config["scales"]
    if scale not in scales:
        raise GrokpipeError(f"config scale: unknown scale {scale!r}; choose one of {', '.join(scales)}")
    s = scales[scale]
    if "backend" in s and s["backend"] not in BACKENDS:
        _fail(f"scales.{scale}.backend", f"unknown backend {s['backend']!r}; choose one of {', '.join(BACKENDS)}")
    jobs: dict[tuple[str, str], ShardJob] = {}
    pretrain_by_task: dict[str, list[ShardJob]] = {}
    adaptive = None
    # pretrain first: others start from its checkpoints
    for experiment in sorted(s["experiments"], key=lambda e: e != FROM_PRETRAIN):
        grids = s["experiments"][experiment]
        for index, exp in enumerate(grids if isinstance(grids, list) else [grids]):
            where = f"scales.{scale}.experiments.{experiment}" + (f"[{index}]" if isinstance(grids, list) else "")
            if "band" in exp:
                if experiment != ADAPTIVE or ADAPTIVE_SOURCE not in s["experiments"]:
                    _fail(where, f"band: only {ADAPTIVE} places its sizes, from a {ADAPTIVE_SOURCE} experiment")
                adaptive = exp
                continue
            _expand_grid(experiment, exp, where, s, jobs, pretrain_by_task)
    return Plan(scale, s, jobs, _throughput(s), adaptive)


def _expand_grid(experiment: str, exp: dict, where: str, s: dict, jobs: dict, pretrain_by_task: dict) -> None:
    p = s["p"]
    for task in exp["tasks"]:
        sizes = _sizes(exp, task, p)
        model = ModelConfig(n_elements(task, p), **s["model"])
        groups: dict[int, list[RunSpec]] = {}
        for wd in exp["weight_decay"]:
            steps = _steps(exp, exp["lr"], wd, where)
            groups.setdefault(steps, []).extend(
                RunSpec(d, wd, seed, exp["lr"], exp["random_labels"]) for d in sizes for seed in exp["seeds"])
        for steps, runs in groups.items():
            runs.sort(key=lambda r: (r.n_train, r.weight_decay, r.seed))
            template = ShardSpec(task=task, p=p, model=model, runs=tuple(runs), steps=steps,
                                 schedule=EvalSchedule(**s["eval"]), checkpoint_every=s["checkpoint_every"],
                                 circuits=exp["circuits"], stop_when_converged=exp["stop_when_converged"],
                                 settle_logit=exp["settle_logit"])
            try:
                template.validate()
            except GrokpipeError as e:
                _fail(where, str(e))
            # runs that start from pretraining are sharded with the runs of the same pretrain shard
            by_source: dict[str | None, list[RunSpec]] = {}
            for run in runs:
                source = _pretrain_for(pretrain_by_task, task, run.seed, where) if exp["init"] == FROM_PRETRAIN else None
                by_source.setdefault(source, []).append(run)
            for init_shard, group in by_source.items():
                limit = exp.get("shard_ms_per_step", s["shard_ms_per_step"])
                for chunk in _cut(replace(template, runs=tuple(group)), limit, s):
                    spec = replace(template, runs=chunk)
                    name = f"{task}-{stable_hash([spec.identity_dict(), init_shard], HASH_LENGTH)}"
                    jobs[(experiment, name)] = job = ShardJob(experiment, name, spec, init_shard)
                    if experiment == FROM_PRETRAIN:
                        pretrain_by_task.setdefault(task, []).append(job)


def _throughput(s: dict) -> Throughput:
    t = s["throughput"]
    return Throughput(t["model_steps_per_s"], t["example_steps_per_s"], t.get("measured", "the config"))


def _cut(template: ShardSpec, limit_ms: float, s: dict) -> list[tuple[RunSpec, ...]]:
    """Consecutive runs (sorted by D) in shards of at most ``shard_size`` runs, with about equal
    estimated milliseconds per step each and none much above ``limit_ms``. Cuts depend on the cost of
    a step, never on the step count: raising ``steps`` keeps every shard (and resumes it); the config's
    throughput decides them (never a measured one: shard names must not depend on the machine)."""
    throughput = _throughput(s)
    costs = [1000 * throughput.step_seconds(replace(template, runs=(r,))) for r in template.runs]
    count = max(math.ceil(len(costs) / s["shard_size"]), math.ceil(sum(costs) / limit_ms), 1)
    target = sum(costs) / count
    chunks, current, spent = [], [], 0.0
    for run, cost in zip(template.runs, costs):
        if current and (len(current) >= s["shard_size"] or spent + cost / 2 > target):
            chunks.append(tuple(current))
            current, spent = [], 0.0
        current.append(run)
        spent += cost
    return chunks + [tuple(current)]


def _pretrain_for(pretrain_by_task: dict, task: str, seed: int, where: str) -> str:
    """The pretrain shard that holds a run of this task and seed."""
    for job in pretrain_by_task.get(task, []):
        if seed in {r.seed for r in job.spec.runs}:
            return job.name
    _fail(where, f"init: pretrain needs a pretrain run of task {task} with seed {seed} (add it to experiments.pretrain)")


def load_config_file(path: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise GrokpipeError(f"cannot read config {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise GrokpipeError(f"config {path} is not a mapping of settings")
    return config


SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


def load_checked_config(path: Path) -> dict:
    """Read a config file and check it against the schema of the project it sits in (as Snakemake does)."""
    path = Path(path)
    schema = path.resolve().parent / SCHEMA
    if not schema.is_file():
        raise GrokpipeError(f"config {path}: no {SCHEMA} beside it to check it against")
    config = load_config_file(path)
    validate_config(config, schema)
    return config


def validate_config(config: dict, schema_path: Path) -> None:
    """Check the config against the JSON schema and fill its defaults; one line names the bad key."""
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    fill_defaults = validator_class.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema_):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from fill_defaults(validator, properties, instance, schema_)

    def finite(validator, value, instance, schema_):  # YAML's .nan and .inf are numbers to JSON Schema
        if value and isinstance(instance, float) and not math.isfinite(instance):
            yield jsonschema.ValidationError(f"{instance} is not a finite number")

    def exactly_one(validator, groups, instance, schema_):
        if isinstance(instance, dict):
            for keys in groups:
                if sum(key in instance for key in keys) != 1:
                    yield jsonschema.ValidationError(f"give exactly one of {', '.join(keys[:-1])} and {keys[-1]}")

    Validator = jsonschema.validators.extend(validator_class, {"properties": properties_with_defaults,
                                                               "finite": finite, "exactlyOne": exactly_one})
    error = jsonschema.exceptions.best_match(Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise GrokpipeError(f"config {where}: {error.message}")


def plan_cost(plan: Plan, jobs: list[ShardJob] | None = None) -> dict[str, dict]:
    """Per experiment: shards, runs, steps, training FLOPs (3 x forward) and estimated seconds, and
    whether its runs stop once converged (``stops_early``): then steps, FLOPs and seconds are caps,
    and the pipeline spends less."""
    from .model import flops_per_example

    out: dict[str, dict] = {}
    for job in jobs if jobs is not None else plan.jobs.values():
        spec = job.spec
        per_step = 3 * flops_per_example(spec.model)["fast"] * sum(r.n_train for r in spec.runs)
        row = out.setdefault(job.experiment, {"shards": 0, "runs": 0, "run_steps": 0, "flops": 0.0, "seconds": 0.0,
                                              "stops_early": False})
        row["stops_early"] |= spec.stop_when_converged
        row["shards"] += 1
        row["runs"] += len(spec.runs)
        row["run_steps"] += len(spec.runs) * spec.steps
        row["flops"] += per_step * spec.steps
        row["seconds"] += plan.seconds(job)
    return out

