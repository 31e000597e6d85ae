rule simulate:
    output:
        "results/simulation.json",
    log:
        "results/logs/simulate.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m grokpipe simulate --json {output} > {log} 2>&1"
