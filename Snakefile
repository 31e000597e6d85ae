# grokpipe: every experiment of "Explaining grokking through circuit efficiency" as one DAG.
#   snakemake --cores all figures                       (quick scale, CPU)
#   snakemake --cores all figures --config scale=paper  (the paper's scale)
from snakemake.utils import min_version

min_version("9.17")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"


rule figures:
    default_target: True
    input:
        FIGURE_FILES,
        "results/claims.md",
