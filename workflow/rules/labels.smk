rule make_labels:
    input:
        images=f"{RESULTS}/images/{{image_set}}/images.pt",
        experts=expert_folders_for_labels,
    output:
        f"{RESULTS}/labels/{{image_set}}/{{labels}}.pt",
    log:
        f"{LOGS}/make_labels/{{image_set}}_{{labels}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpu_resource(),
    params:
        checkpoints=lambda wildcards: " ".join(shlex.quote(path) for path in expert_checkpoints_for_labels(wildcards)),
        seed=config["image_seed"],
        device=config["device"],
    shell:
        "labelworth make-labels --images {input.images:q} --label-spec {wildcards.labels}"
        " --expert-checkpoints {params.checkpoints} --seed {params.seed} --out {output:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"


rule class_similarity:
    input:
        **data_files(),
        expert=expert_folders_for_labels,
    output:
        class_similarity_file("{labels}"),
    log:
        f"{LOGS}/class_similarity/{{labels}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpu_resource(),
    params:
        checkpoint=lambda wildcards: expert_checkpoints_for_labels(wildcards)[0],
        device=config["device"],
    shell:
        "labelworth class-similarity --data-dir $(dirname {input.train:q}) --expert-checkpoint {params.checkpoint:q}"
        " --out {output:q} --device {params.device} --threads {threads} > {log:q} 2>&1"
