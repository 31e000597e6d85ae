#!/usr/bin/env bash
# Stands in for sbatch in tests: starts the job script in the background and prints a job id,
# so snakemake-executor-plugin-cluster-generic submits and tracks real, concurrent jobs.
jobscript="${*: -1}"
nohup bash "$jobscript" > "$jobscript.out" 2>&1 &
echo "$!"
