# Figures read results files only; they are cheap, so they stay on the submit host on a cluster.
rule figure_soft_vs_hard:
    input:
        benchmark_student_results(),
    output:
        png=report(
            f"{RESULTS}/figures/soft_vs_hard.png",
            caption="../report/soft_vs_hard.rst",
            category="Soft-label baseline",
        ),
        pdf=f"{RESULTS}/figures/soft_vs_hard.pdf",
        csv=f"{RESULTS}/tables/soft_vs_hard.csv",
        md=report(
            f"{RESULTS}/tables/soft_vs_hard.md",
            caption="../report/soft_vs_hard_table.rst",
            category="Soft-label baseline",
        ),
    log:
        f"{LOGS}/figures/soft_vs_hard.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth figure soft_vs_hard --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --table-csv {output.csv:q} --table-md {output.md:q} > {log:q} 2>&1"


rule figure_expert_training:
    input:
        [expert_metrics(seed) for seed in EXPERT["seeds"]],
    output:
        png=report(
            f"{RESULTS}/figures/expert_training.png",
            caption="../report/expert_training.rst",
            category="Experts",
        ),
        pdf=f"{RESULTS}/figures/expert_training.pdf",
    log:
        f"{LOGS}/figures/expert_training.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        marked_epochs=" ".join(str(epoch) for epoch in sorted(set(config["benchmark"]["expert_epoch"]))),
    shell:
        "labelworth figure expert_training --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --marked-epochs {params.marked_epochs} > {log:q} 2>&1"
