# One rule per experiment, all of one shape: train a shard of runs as one ensemble.
# The resume checkpoint (results/checkpoints/...) is deliberately not an output: Snakemake
# deletes a failed job's outputs, and the checkpoint is what lets the re-run resume.
for _experiment in EXPERIMENTS:

    rule:
        name:
            _experiment
        input:
            init_input,
        output:
            "results/runs/{experiment}/{shard}.h5",
        params:
            args=train_args,
            checkpoint=checkpoint_path,
        log:
            "results/logs/{experiment}/{shard}.log",
        threads: SCALE["threads"]
        resources:
            gpu=gpus,
            mem_mb=mem_mb,
            runtime=runtime_min,
        wildcard_constraints:
            experiment=_experiment,
        conda:
            ENV
        shell:
            "python -m grokpipe train {params.args} --out {output} --checkpoint {params.checkpoint}"
            " --threads {threads} > {log} 2>&1"
