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
        seeds=" ".join(str(seed) for seed in STUDENT["seeds"]),
        epochs=STUDENT["epochs"],
        lr=STUDENT["lr"],
        optimizer=STUDENT["optimizer"],
        batch_size=STUDENT["batch_size"],
        eval_every=STUDENT["eval_every"],
        engine=STUDENT["engine"],
        device=config["device"],
    shell:
        "labelworth evaluate-students --images {input.images:q} --labels {input.labels:q}"
        " --data-dir $(dirname {input.test:q}) --out {output:q} --arch {wildcards.student}"
        " --seeds {params.seeds} --epochs {params.epochs} --lr {params.lr}"
        " --optimizer {params.optimizer} --batch-size {params.batch_size}"
        " --eval-every {params.eval_every} --engine {params.engine} --device {params.device} --threads {threads}"
        " > {log:q} 2>&1"
