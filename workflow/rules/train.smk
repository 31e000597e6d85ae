# One rule per experiment, all of one shape: train a shard of runs as one ensemble. The rule
# writes the shard's spec (JSON, from the plan) and `grokpipe train --spec` reads it. The resume
# checkpoint (results/checkpoints/...) is deliberately not an output: Snakemake deletes a failed
# job's outputs, and the checkpoint is what lets the re-run resume.
for _experiment in EXPERIMENTS:

    rule:
        name:
            _experiment
        input:
            init_input,
        output:
            shard=SHARD_FILE,
            spec=plan_module.SPEC_FILE,
        params:
            spec=lambda wildcards: shard_job(wildcards).spec.to_json(),
            checkpoint=lambda wildcards: shard_job(wildcards).checkpoint,
            init=lambda wildcards: f"--init-from {shard_job(wildcards).init_checkpoint}" if shard_job(wildcards).init_shard else "",
            # the scale's process settings follow its device here, not in a param or shell text of their
            # own: Snakemake re-runs every job whose rule's shell command changes (its "code" trigger)
            device=PLAN.device_args,
        log:
            plan_module.SHARD_LOG,
        threads: SCALE["threads"]
        resources:
            gpu=lambda wildcards: PLAN.resources(shard_job(wildcards))["gpu"],
            mem_mb=lambda wildcards: PLAN.resources(shard_job(wildcards))["mem_mb"],
            runtime=lambda wildcards: PLAN.resources(shard_job(wildcards))["runtime"],
        priority: lambda wildcards: PLAN.priority(shard_job(wildcards))
        wildcard_constraints:
            experiment=_experiment,
        conda:
            ENV
        shell:
            "printf '%s\\n' {params.spec:q} > {output.spec}; python -m grokpipe train --spec {output.spec}"
            " --experiment {wildcards.experiment} {params.init} --out {output.shard} --checkpoint {params.checkpoint}"
            " --device {params.device} --threads {threads} > {log} 2>&1"


# Semi-grokking's first stage ends here: Snakemake re-evaluates the DAG once the band is known,
# and the second stage's shards (grokpipe.config.Plan.adaptive_jobs) join it.
checkpoint semigrok_band:
    input:
        lambda wildcards: [job.output for job in PLAN.experiment_jobs(plan_module.ADAPTIVE_SOURCE)],
    output:
        BAND_FILE,
    params:
        sizes=lambda wildcards: PLAN.adaptive["band"]["sizes"],
    log:
        "results/logs/semigrok_band.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m grokpipe band --sizes {params.sizes} --out {output} {input} > {log} 2>&1"
