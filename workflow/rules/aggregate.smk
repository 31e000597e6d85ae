rule aggregate:
    input:
        simulation="results/simulation.json",
        shards=PLAN.outputs(),
        adaptive=adaptive_outputs,
    output:
        "results/metrics.h5",
    log:
        "results/logs/aggregate.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m grokpipe aggregate --simulation {input.simulation} --out {output} {input.shards} {input.adaptive}"
        " > {log} 2>&1"
