# Experts train in an undeclared work/ folder and resume from it: Snakemake deletes declared outputs
# before a job and after a failure (see labelworth/experts.py).
rule train_expert:
    input:
        **data_files(),
    output:
        checkpoints=expand(
            f"{RESULTS}/experts/{{arch}}-lr{{lr}}/seed{{seed}}/checkpoints/epoch_{{epoch:03d}}.pt",
            epoch=range(EXPERT["epochs"] + 1),
            allow_missing=True,
        ),
        metrics=f"{RESULTS}/experts/{{arch}}-lr{{lr}}/seed{{seed}}/metrics.csv",
    log:
        f"{LOGS}/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.tsv"
    conda:
        "../../envs/labelworth.yaml"
    threads: 8
    resources:
        mem_mb=8000,
        runtime=720,
    params:
        epochs=EXPERT["epochs"],
        batch_size=EXPERT["batch_size"],
        work_dir=f"work/{DATASET}/experts/{{arch}}-lr{{lr}}/seed{{seed}}",
        device=config["device"],
    shell:
        "labelworth train-expert --data-dir $(dirname {input.train:q}) --arch {wildcards.arch}"
        " --lr {wildcards.lr} --seed {wildcards.seed} --epochs {params.epochs}"
        " --batch-size {params.batch_size} --checkpoint-dir $(dirname {output.checkpoints[0]:q})"
        " --metrics {output.metrics:q} --work-dir {params.work_dir:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"
