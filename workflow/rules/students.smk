rule evaluate_students:
    input:
        images=f"{RESULTS}/images/{{method}}-ipc{{ipc}}/images.pt",
        labels=f"{RESULTS}/labels/{{method}}-ipc{{ipc}}/{{labels}}.pt",
        test=data_files()["test"],
    output:
        f"{RESULTS}/students/{{method}}-ipc{{ipc}}/{{labels}}/{{student}}.json",
    log:
        f"{LOGS}/evaluate_students/{{method}}-ipc{{ipc}}_{{labels}}_{{student}}.log",
    benchmark:
        f"{LOGS}/benchmarks/evaluate_students/{{method}}-ipc{{ipc}}_{{labels}}_{{student}}.tsv"
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        seeds=" ".join(str(seed) for seed in STUDENT["seeds"]),
        epochs=STUDENT["epochs"],
        lr=STUDENT["lr"],
        optimizer=STUDENT["optimizer"],
        batch_size=STUDENT["batch_size"],
        eval_every=STUDENT["eval_every"],
        device=config["device"],
    shell:
        "labelworth evaluate-students --images {input.images:q} --labels {input.labels:q}"
        " --data-dir $(dirname {input.test:q}) --out {output:q} --arch {wildcards.student}"
        " --seeds {params.seeds} --epochs {params.epochs} --lr {params.lr}"
        " --optimizer {params.optimizer} --batch-size {params.batch_size}"
        " --eval-every {params.eval_every} --device {params.device} --threads {threads}"
        " > {log:q} 2>&1"
