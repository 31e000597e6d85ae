# Helpers shared by the rules. Everything about shards (names, paths, specs, costs, priorities,
# resources) comes from the plan (grokpipe.config); nothing here re-derives it.
import json
import sys
from pathlib import Path

import grokpipe
from grokpipe import config as plan_module
from grokpipe.config import ADAPTIVE, BAND_FILE, EXPERIMENTS, SHARD_FILE, SHARD_NAME, load_plan, validate_config
from grokpipe.errors import GrokpipeError
from grokpipe.figures import FIGURES, code_dependencies
from grokpipe import __version__
from grokpipe.spec import NUMERICS_VERSION

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
    PLAN = load_plan(config)
except GrokpipeError as error:
    sys.exit(f"grokpipe: error: {error}")

SCALE = PLAN.settings
FIGURE_FORMATS = config["figures"]["formats"]
PACKAGE_DIR = Path(grokpipe.__file__).parent
# Every rule runs this checkout's grokpipe (`python -m grokpipe`), inside or outside a
# Snakemake-managed environment. (Snakemake formats the prefix too: braces are doubled twice.)
shell.prefix(f"set -euo pipefail; export PYTHONPATH={PACKAGE_DIR.parent}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
ENV = "../envs/grokpipe.yaml"
FIGURE_FILES = [f"results/figures/{name}.{ext}" for name in FIGURES for ext in FIGURE_FORMATS]
# Claims read the metrics file through the store and judge with the analysis: their code is their input.
CLAIMS_CODE = code_dependencies("grokpipe.claims")
# Every shard's name holds the numerics version, so the runs of a figure were trained by this one.
# (The commit and device of each run: the figure's footer and the claims report.)
# (Constants only: reading the git state here would run git each time Snakemake parses the workflow.)
TRAINED_BY = f"Its runs were trained by grokpipe {__version__}, numerics version {NUMERICS_VERSION}."


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    shard=SHARD_NAME,
    figure="|".join(FIGURES),


def band():
    """The semi-grokking band the first stage found (after its checkpoint rule ran), or None."""
    if PLAN.adaptive is None:
        return None
    return json.loads(Path(checkpoints.semigrok_band.get().output[0]).read_text())


def shard_job(wildcards):
    return PLAN.job(wildcards.experiment, wildcards.shard, band() if wildcards.experiment == ADAPTIVE else None)


def adaptive_outputs(wildcards):
    """The adaptive stage's shard files, once the first stage has placed it (until then Snakemake
    waits on the checkpoint, and a dry run still shows every other shard)."""
    adaptive = PLAN.adaptive_jobs(band()) if PLAN.adaptive is not None else {}
    return [job.output for job in adaptive.values()]


def init_input(wildcards):
    """The pretrain shard a shard starts from: ungrok depends on the cached checkpoint."""
    return PLAN.init_output(shard_job(wildcards))
