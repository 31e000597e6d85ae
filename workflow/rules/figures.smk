# One job per figure: each reads only results/metrics.h5 and depends on the code its module
# imports (computed from the imports, grokpipe.figures.code_dependencies), so restyling one figure
# re-renders that figure only and editing shared code re-renders the figures that use it.
rule figure:
    input:
        metrics="results/metrics.h5",
        code=lambda wildcards: code_dependencies(f"grokpipe.figures.{wildcards.figure}"),
    output:
        report(
            [f"results/figures/{{figure}}.{ext}" for ext in FIGURE_FORMATS],
            caption="../report/figure.rst",
            category="Figures",
        ),
    params:
        caption=lambda wildcards: f"{FIGURES[wildcards.figure]} {TRAINED_BY}",
        dpi=config["figures"]["dpi"],
        formats=",".join(FIGURE_FORMATS),
    log:
        "results/logs/figures/{figure}.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m grokpipe figures --metrics {input.metrics} --only {wildcards.figure} --out-dir results/figures"
        " --dpi {params.dpi} --formats {params.formats} > {log} 2>&1"


rule claims:
    input:
        metrics="results/metrics.h5",
        code=CLAIMS_CODE,
    output:
        markdown=report("results/claims.md", caption="../report/claims.rst", category="Claims"),
        json="results/claims.json",
    log:
        "results/logs/claims.log",
    threads: 1
    conda:
        ENV
    shell:
        "python -m grokpipe claims --metrics {input.metrics} --markdown {output.markdown} --json {output.json} > {log} 2>&1"
