# Student evaluation: {student} names the protocol (students.<name> in the config), whose settings for
# the image set's IPC are the job's options; as a param, changing any of them reruns its students.
# By default one job per (image set, label set, protocol); with student_populations: per_image_set
# one job trains every label set an experiment compares on one image set as a single population, and
# a local job per label set takes its result out, so the figures read the same files.


rule evaluate_students:
    input:
        **VALIDATION_INPUT,
        images=LAYOUT.images("{image_set}"),
        labels=LAYOUT.labels("{image_set}", "{labels}"),
        test=LAYOUT.data("test"),
    output:
        LAYOUT.student("{image_set}", "{labels}", "{student}"),
    log:
        LAYOUT.log("evaluate_students", "{image_set}_{labels}_{student}"),
    benchmark:
        LAYOUT.benchmark("evaluate_students", "{image_set}_{labels}_{student}")
    # Grouped populations make every student result: then this rule serves only train_population.
    wildcard_constraints:
        image_set=NEVER if CONFIG.student_populations == "per_image_set" else IMAGE_SET_PATTERN,
    conda:
        "../../envs/labelworth.yaml"
    # One thread per student job: at small IPC a step is too small to split across cores, and two
    # jobs side by side finish more students per second (benchmarks/results/students.md). A grouped
    # job spends less CPU than its label sets' separate jobs (one interpreter start and data load;
    # benchmarks/results/populations.md), and two run side by side too.
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=gpu_resource(),
    params:
        options=student_options,
        device=DEVICE,
    shell:
        "labelworth evaluate-students --images {input.images:q} --labels {input.labels:q}"
        " --data-dir $(dirname {input.test:q}) --out {output:q} --protocol {wildcards.student}"
        " {params.options} --device {params.device} --threads {threads} > {log:q} 2>&1"


if CONFIG.student_populations == "per_image_set":

    use rule evaluate_students as train_population with:
        input:
            **VALIDATION_INPUT,
            images=LAYOUT.images("{image_set}"),
            labels=lambda wildcards: [
                LAYOUT.labels(wildcards.image_set, labels) for labels in grouped_labels(wildcards)
            ],
            test=LAYOUT.data("test"),
        output:
            LAYOUT.population("{experiment}", "{image_set}", "{student}"),
        log:
            LAYOUT.log("train_population", "{experiment}_{image_set}_{student}"),
        benchmark:
            LAYOUT.benchmark("train_population", "{experiment}_{image_set}_{student}")
        wildcard_constraints:
            image_set=IMAGE_SET_PATTERN,

    rule population_member:
        input:
            grouped_population,
        output:
            LAYOUT.student("{image_set}", "{labels}", "{student}"),
        log:
            LAYOUT.log("population_member", "{image_set}_{labels}_{student}"),
        localrule: True
        conda:
            "../../envs/labelworth.yaml"
        shell:
            "labelworth population-member --population {input:q} --label-spec {wildcards.labels}"
            " --out {output:q} > {log:q} 2>&1"
