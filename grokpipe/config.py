"""The pipeline's plan: ``config.yaml`` expanded into shards of runs.

The config has two scales under ``scales:`` and a switch ``scale: quick|paper``. Each scale
names its model, its modulus and its experiments; every experiment is a grid (tasks x training
set sizes x weight decays x seeds) trained either from a random start or from the ``pretrain``
checkpoint of the same task and seed. :func:`load_plan` turns the grid into shards: runs with the
same task and step count, sorted by training set size and cut into groups of at most
``shard_size``, so an ensemble pads its members to similar sizes.

This module is the only place that knows the config's shape; the Snakefile asks it for shard
names and command lines and holds no science itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .errors import GrokpipeError
from .spec import EvalSchedule, ModelConfig, RunSpec, ShardSpec, stable_hash
from .tasks import TASKS, make_dataset, n_elements, validate_task

EXPERIMENTS = ("grok", "pretrain", "ungrok", "ungrok_tasks", "semigrok", "efficiency_mem", "efficiency_gen")
FROM_PRETRAIN = "pretrain"


@dataclass(frozen=True)
class ShardJob:
    experiment: str
    name: str
    spec: ShardSpec
    init_shard: str | None  # name of the pretrain shard this one starts from

    @property
    def output(self) -> str:
        return f"results/runs/{self.experiment}/{self.name}.h5"

    @property
    def checkpoint(self) -> str:
        return f"results/checkpoints/{self.experiment}/{self.name}.pt"

    def train_args(self, device: str) -> str:
        """Everything ``grokpipe train`` needs besides --out, --checkpoint and --threads."""
        s, m = self.spec, self.spec.model
        r0 = s.runs[0]
        args = [
            f"--experiment {self.experiment}", f"--task {s.task}", f"--p {s.p}", f"--steps {s.steps}",
            f"--lr {r0.lr}", f"--d-model {m.d_model}", f"--n-heads {m.n_heads}", f"--d-head {m.d_head}",
            f"--d-mlp {m.d_mlp}", f"--eval-every {s.schedule.every}", f"--evals-per-decade {s.schedule.per_decade}",
            f"--checkpoint-every {s.checkpoint_every}", f"--device {device}",
            "--runs " + " ".join(f"{r.n_train}:{r.weight_decay}:{r.seed}" for r in s.runs),
        ]
        if r0.random_labels:
            args.append("--random-labels")
        if s.circuits:
            args.append("--circuits")
        if self.init_shard:
            args.append(f"--init-from results/checkpoints/{FROM_PRETRAIN}/{self.init_shard}.pt")
        return " ".join(args)


@dataclass(frozen=True)
class Plan:
    scale: str
    settings: dict
    jobs: dict[tuple[str, str], ShardJob]

    def experiment_jobs(self, experiment: str) -> list[ShardJob]:
        return [j for (e, _), j in self.jobs.items() if e == experiment]

    def job(self, experiment: str, name: str) -> ShardJob:
        try:
            return self.jobs[(experiment, name)]
        except KeyError:
            raise GrokpipeError(f"no shard {experiment}/{name} in the {self.scale} plan") from None

    def outputs(self) -> list[str]:
        return [j.output for j in self.jobs.values()]

    def init_output(self, job: ShardJob) -> list[str]:
        return [self.job(FROM_PRETRAIN, job.init_shard).output] if job.init_shard else []


def _fail(where: str, what: str):
    raise GrokpipeError(f"config {where}: {what}")


def _sizes(exp: dict, task: str, p: int, where: str) -> list[int]:
    total = make_dataset(task, p).n_examples
    if ("n_train" in exp) == ("n_train_fraction" in exp):
        _fail(where, "give exactly one of n_train and n_train_fraction")
    if "n_train" in exp:
        sizes = [int(d) for d in exp["n_train"]]
    else:
        sizes = [max(1, round(f * total)) for f in exp["n_train_fraction"]]
    if not sizes:
        _fail(where, "empty grid of training set sizes")
    for d in sizes:
        if not 1 <= d <= total:
            _fail(where, f"n_train={d} is impossible for task {task} with p={p} ({total} examples)")
    return sorted(set(sizes))


def _steps(exp: dict, lr: float, wd: float, where: str) -> int:
    if ("steps" in exp) == ("lr_wd_steps" in exp):
        _fail(where, "give exactly one of steps and lr_wd_steps")
    if "steps" in exp:
        return int(exp["steps"])
    if wd <= 0:
        _fail(where, "lr_wd_steps needs every weight decay > 0")
    return max(1, math.ceil(exp["lr_wd_steps"] / (lr * wd)))


def _nonempty(exp: dict, key: str, where: str) -> list:
    values = exp.get(key)
    if not values:
        _fail(where, f"{key} is an empty grid")
    if len(set(values)) != len(values):
        _fail(where, f"{key} has duplicate values: {values}")
    return list(values)


def load_plan(config: dict) -> Plan:
    """Expand the config (as Snakemake loaded it) into shards; raise GrokpipeError on a bad value."""
    scale = config.get("scale", "quick")
    scales = config.get("scales", {})
    if scale not in scales:
        raise GrokpipeError(f"config scale: unknown scale {scale!r}; choose one of {', '.join(scales) or 'none defined'}")
    s = scales[scale]
    p = int(s["p"])
    jobs: dict[tuple[str, str], ShardJob] = {}
    pretrain_by_task: dict[str, list[ShardJob]] = {}
    unknown = set(s["experiments"]) - set(EXPERIMENTS)
    if unknown:
        _fail(f"scales.{scale}.experiments", f"unknown experiment(s) {sorted(unknown)}; known: {', '.join(EXPERIMENTS)}")
    # pretrain first: others start from its checkpoints
    order = sorted(s["experiments"], key=lambda e: e != FROM_PRETRAIN)
    for experiment in order:
        grids = s["experiments"][experiment]
        for index, exp in enumerate(grids if isinstance(grids, list) else [grids]):
            where = f"scales.{scale}.experiments.{experiment}" + (f"[{index}]" if isinstance(grids, list) else "")
            _expand_grid(experiment, exp, where, s, p, jobs, pretrain_by_task)
    return Plan(scale, s, jobs)


def _expand_grid(experiment: str, exp: dict, where: str, s: dict, p: int, jobs: dict, pretrain_by_task: dict) -> None:
    for task in _nonempty(exp, "tasks", where):
        if task not in TASKS:
            _fail(where, f"unknown task {task!r}; choose from {', '.join(TASKS)}")
        try:
            validate_task(task, p)
        except GrokpipeError as e:
            _fail(where, str(e))
        lr = float(exp.get("lr", 1e-3))
        if lr <= 0:
            _fail(where, f"lr must be > 0, got {lr}")
        init = exp.get("init", "random")
        if init not in ("random", FROM_PRETRAIN):
            _fail(where, f"init must be random or pretrain, got {init!r}")
        sizes = _sizes(exp, task, p, where)
        wds = [float(w) for w in _nonempty(exp, "weight_decay", where)]
        if any(w < 0 for w in wds):
            _fail(where, f"weight decay must be >= 0, got {wds}")
        seeds = [int(x) for x in _nonempty(exp, "seeds", where)]
        if any(x < 0 for x in seeds):
            _fail(where, f"seeds must be >= 0, got {seeds}")
        model = ModelConfig(n_elements(task, p), **s["model"])
        groups: dict[int, list[RunSpec]] = {}
        for wd in wds:
            steps = _steps(exp, lr, wd, where)
            groups.setdefault(steps, []).extend(
                RunSpec(d, wd, seed, lr, bool(exp.get("random_labels", False))) for d in sizes for seed in seeds
            )
        for steps, runs in groups.items():
            runs.sort(key=lambda r: (r.n_train, r.weight_decay, r.seed))
            size = int(s.get("shard_size", 8))
            for start in range(0, len(runs), size):
                chunk = tuple(runs[start : start + size])
                init_shard = None
                if init == FROM_PRETRAIN:
                    init_shard = _pretrain_for(pretrain_by_task, task, chunk, where)
                spec = ShardSpec(
                    task=task, p=p, model=model, runs=chunk, steps=steps,
                    schedule=EvalSchedule(**s.get("eval", {})),
                    checkpoint_every=int(s.get("checkpoint_every", 1000)),
                    circuits=bool(exp.get("circuits", False)),
                )
                name = f"{task}-{stable_hash([spec.identity_dict(), init_shard], 10)}"
                job = ShardJob(experiment, name, spec, init_shard)
                jobs[(experiment, name)] = job
                if experiment == FROM_PRETRAIN:
                    pretrain_by_task.setdefault(task, []).append(job)


def _pretrain_for(pretrain_by_task: dict, task: str, runs: tuple[RunSpec, ...], where: str) -> str:
    """The one pretrain shard that holds every seed these runs need."""
    seeds = {r.seed for r in runs}
    for job in pretrain_by_task.get(task, []):
        if seeds <= {r.seed for r in job.spec.runs}:
            return job.name
    _fail(where, f"init: pretrain needs a pretrain shard of task {task} with seeds {sorted(seeds)} "
                 f"(add them to experiments.pretrain, and keep its shard_size >= its seed count)")


def load_config_file(path: Path) -> dict:
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GrokpipeError(f"cannot read config {path}: {str(e).splitlines()[0]}") from None


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
                    instance[key] = sub["default"]
        yield from fill_defaults(validator, properties, instance, schema_)

    Validator = jsonschema.validators.extend(validator_class, {"properties": properties_with_defaults})
    error = jsonschema.exceptions.best_match(Validator(schema).iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise GrokpipeError(f"config {where}: {error.message}")


def plan_cost(plan: Plan) -> dict[str, dict]:
    """Per experiment: shards, runs, steps and training FLOPs (3 x forward, padded ensembles)."""
    from .model import flops_per_example

    out: dict[str, dict] = {}
    for (experiment, _), job in plan.jobs.items():
        spec = job.spec
        per_step = 3 * flops_per_example(spec.model)["fast"] * len(spec.runs) * max(r.n_train for r in spec.runs)
        row = out.setdefault(experiment, {"shards": 0, "runs": 0, "run_steps": 0, "flops": 0.0})
        row["shards"] += 1
        row["runs"] += len(spec.runs)
        row["run_steps"] += len(spec.runs) * spec.steps
        row["flops"] += per_step * spec.steps
    return out
