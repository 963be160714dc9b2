# Figures read results files only; they are cheap, so they stay on the submit host on a cluster.
# Every student experiment has the same rule shape: its students' results in, a figure and a table
# out. The expert-epoch sweep is a checkpoint: its table decides what `expert_epoch: auto` means.
FIGURE_COMMAND = (
    "labelworth figure {params.name} --inputs {input.students:q} --expert-metrics {input.metrics:q}"
    " --png {output.png:q} --pdf {output.pdf:q} --table-csv {output.csv:q} --table-md {output.md:q}"
    " > {log:q} 2>&1"
)


checkpoint figure_expert_epoch_sweep:
    input:
        students=student_results_for("expert_epoch_sweep"),
        metrics=block_metrics("expert_epoch_sweep"),
    output:
        **figure_outputs("expert_epoch_sweep", "Expert epoch"),
    log:
        f"{LOGS}/figures/expert_epoch_sweep.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        name="expert_epoch_sweep",
    shell:
        FIGURE_COMMAND


for experiment in STUDENT_EXPERIMENTS:
    if experiment == "expert_epoch_sweep":
        continue

    rule:
        name:
            f"figure_{experiment}"
        input:
            unpack(figure_extra_inputs(experiment)),
            students=student_results_for(experiment),
            metrics=block_metrics(experiment),
        output:
            **figure_outputs(experiment, "Soft-label analyses"),
        log:
            f"{LOGS}/figures/{experiment}.log",
        localrule: True
        conda:
            "../../envs/labelworth.yaml"
        params:
            name=experiment,
            extra=figure_extra_option(experiment),
        shell:
            FIGURE_COMMAND.replace(" > {log:q}", " {params.extra} > {log:q}")


# DD-Ranking's label-robustness scores of the benchmark's methods, from the benchmark's students.
rule figure_label_robustness:
    input:
        external=external_summaries("soft_vs_hard"),
        students=student_results_for("soft_vs_hard"),
        metrics=block_metrics("soft_vs_hard"),
    output:
        **figure_outputs("label_robustness", "Soft-label analyses"),
    log:
        f"{LOGS}/figures/label_robustness.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        name="label_robustness",
        full_data=full_data_option(),
    shell:
        FIGURE_COMMAND.replace(" > {log:q}", " {params.full_data} > {log:q}")


# What labels cost: the benchmark's populations against the bytes of their images and labels.
rule figure_accuracy_vs_storage:
    input:
        external=external_summaries("soft_vs_hard"),
        students=student_results_for("soft_vs_hard"),
        metrics=block_metrics("soft_vs_hard"),
    output:
        **figure_outputs("accuracy_vs_storage", "Soft-label analyses"),
    log:
        f"{LOGS}/figures/accuracy_vs_storage.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        name="accuracy_vs_storage",
    shell:
        FIGURE_COMMAND


rule figure_expert_training:
    input:
        trained_expert_metrics(),
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
        marked_epochs=marked_expert_epochs(),
    shell:
        "labelworth figure expert_training --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --marked-epochs {params.marked_epochs} > {log:q} 2>&1"


rule figure_soft_label_bars:
    input:
        soft_label_picture_inputs(),
    output:
        png=report(
            f"{RESULTS}/figures/soft_label_bars.png",
            caption="../report/soft_label_bars.rst",
            category="Soft-label pictures",
        ),
        pdf=f"{RESULTS}/figures/soft_label_bars.pdf",
    log:
        f"{LOGS}/figures/soft_label_bars.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        image=config.get("soft_label_pictures", {}).get("image", 0),
    shell:
        "labelworth figure soft_label_bars --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " --extra {params.image} > {log:q} 2>&1"


rule figure_class_similarity:
    input:
        class_similarity_file(pictures_label(config["soft_label_pictures"]["similarity_epoch"]))
        if "soft_label_pictures" in config
        else [],
    output:
        png=report(
            f"{RESULTS}/figures/class_similarity.png",
            caption="../report/class_similarity.rst",
            category="Soft-label pictures",
        ),
        pdf=f"{RESULTS}/figures/class_similarity.pdf",
    log:
        f"{LOGS}/figures/class_similarity.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth figure class_similarity --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"


rule figure_benchmark_images:
    input:
        benchmark_image_sets(),
    output:
        png=report(
            f"{RESULTS}/figures/benchmark_images.png",
            caption="../report/benchmark_images.rst",
            category="Soft-label analyses",
        ),
        pdf=f"{RESULTS}/figures/benchmark_images.pdf",
    log:
        f"{LOGS}/figures/benchmark_images.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth figure benchmark_images --inputs {input:q} --png {output.png:q} --pdf {output.pdf:q}"
        " > {log:q} 2>&1"
