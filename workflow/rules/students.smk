# Student evaluation: {student} names the protocol (students.<name> in the config), whose settings for
# the image set's IPC are the job's options; as a param, changing any of them reruns its students.
# By default one job per (image set, label set, protocol); with student_populations: per_image_set
# one job trains every label set an experiment compares on one image set as a single population, and
# a local job per label set takes its result out, so the figures read the same files.

if config.get("student_populations", "per_label_set") == "per_label_set":

    rule evaluate_students:
        input:
            images=f"{RESULTS}/images/{{image_set}}/images.pt",
            labels=f"{RESULTS}/labels/{{image_set}}/{{labels}}.pt",
            test=data_files()["test"],
        output:
            f"{RESULTS}/students/{{image_set}}/{{labels}}/{{student}}.json",
        log:
            f"{LOGS}/evaluate_students/{{image_set}}_{{labels}}_{{student}}.log",
        benchmark:
            f"{LOGS}/benchmarks/evaluate_students/{{image_set}}_{{labels}}_{{student}}.tsv"
        conda:
            "../../envs/labelworth.yaml"
        # One thread per student job: at small IPC a step is too small to split across cores, and
        # two jobs side by side finish more students per second (benchmarks/results/students.md).
        threads: 1
        resources:
            mem_mb=4000,
            runtime=240,
            gpu=gpu_resource(),
        params:
            options=student_options,
            device=config["device"],
        shell:
            "labelworth evaluate-students --images {input.images:q} --labels {input.labels:q}"
            " --data-dir $(dirname {input.test:q}) --out {output:q} --protocol {wildcards.student}"
            " {params.options} --device {params.device} --threads {threads} > {log:q} 2>&1"

else:

    rule train_population:
        input:
            images=f"{RESULTS}/images/{{image_set}}/images.pt",
            labels=lambda wildcards: [labels_file(wildcards.image_set, labels) for labels in grouped_labels(wildcards)],
            test=data_files()["test"],
        output:
            population_file("{experiment}", "{image_set}", "{student}"),
        log:
            f"{LOGS}/train_population/{{experiment}}_{{image_set}}_{{student}}.log",
        benchmark:
            f"{LOGS}/benchmarks/train_population/{{experiment}}_{{image_set}}_{{student}}.tsv"
        conda:
            "../../envs/labelworth.yaml"
        # One thread, as above: a grouped job spends less CPU than its label sets' separate jobs
        # (one interpreter start and data load; benchmarks/results/populations.md), and two run side by side.
        threads: 1
        resources:
            mem_mb=4000,
            runtime=240,
            gpu=gpu_resource(),
        params:
            options=student_options,
            device=config["device"],
        shell:
            "labelworth evaluate-students --images {input.images:q} --labels {input.labels:q}"
            " --data-dir $(dirname {input.test:q}) --out {output:q} --protocol {wildcards.student}"
            " {params.options} --device {params.device} --threads {threads} > {log:q} 2>&1"

    rule population_member:
        input:
            grouped_population,
        output:
            f"{RESULTS}/students/{{image_set}}/{{labels}}/{{student}}.json",
        log:
            f"{LOGS}/population_member/{{image_set}}_{{labels}}_{{student}}.log",
        localrule: True
        conda:
            "../../envs/labelworth.yaml"
        shell:
            "labelworth population-member --population {input:q} --label-spec {wildcards.labels}"
            " --out {output:q} > {log:q} 2>&1"
