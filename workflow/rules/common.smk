# Helpers shared by the rules: the plan (config -> shards) and what each job needs.
import sys
from pathlib import Path

import grokpipe
from grokpipe.config import EXPERIMENTS, load_plan, validate_config
from grokpipe.errors import GrokpipeError
from grokpipe.figures import FIGURES

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    PLAN = load_plan(config)
except GrokpipeError as error:
    sys.exit(f"grokpipe: error: {error}")

SCALE = PLAN.settings
DEVICE = SCALE["device"]
FIGURE_FORMATS = config["figures"]["formats"]
# Figures and claims depend on their own code: restyling re-renders, and never re-trains.
PACKAGE_DIR = Path(grokpipe.__file__).parent
# Every rule runs this checkout's grokpipe (`python -m grokpipe`), inside or outside a
# Snakemake-managed environment.
# (Snakemake formats the prefix too: braces are doubled twice.)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={PACKAGE_DIR.parent}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
ENV = "../envs/grokpipe.yaml"
FIGURE_SHARED_CODE = [
    str(PACKAGE_DIR / "figures" / name) for name in ("__init__.py", "_common.py", "_panels.py")
] + [str(PACKAGE_DIR / "analysis.py"), str(PACKAGE_DIR / "store.py")]
FIGURE_FILES = [f"results/figures/{name}.{ext}" for name in FIGURES for ext in FIGURE_FORMATS]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    shard=r"[a-z0-9_]+-[0-9a-f]{10}",
    figure="|".join(FIGURES),


def shard_outputs(experiment):
    return [job.output for job in PLAN.experiment_jobs(experiment)]


def shard_job(wildcards):
    return PLAN.job(wildcards.experiment, wildcards.shard)


def init_input(wildcards):
    """The pretrain shard a shard starts from: ungrok depends on the cached checkpoint."""
    return PLAN.init_output(shard_job(wildcards))


def train_args(wildcards):
    return shard_job(wildcards).train_args(DEVICE)


def checkpoint_path(wildcards):
    return shard_job(wildcards).checkpoint


def gpus(wildcards):
    return SCALE.get("resources", {}).get("gpu", 0)


def mem_mb(wildcards):
    return SCALE.get("resources", {}).get("mem_mb", 2000)


def runtime_min(wildcards):
    """Minutes, from the config's measured minutes per million steps of one shard."""
    per_mstep = SCALE.get("resources", {}).get("runtime_per_mstep_min", 60)
    return max(10, int(per_mstep * shard_job(wildcards).spec.steps / 1e6) + 10)
