rule make_labels:
    input:
        images=LAYOUT.images("{image_set}"),
        experts=label_checkpoint_folders,
    output:
        LAYOUT.labels("{image_set}", "{labels}"),
    log:
        LAYOUT.log("make_labels", "{image_set}_{labels}"),
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpu_resource(),
    params:
        checkpoints=lambda wildcards: " ".join(shlex.quote(path) for path in label_checkpoints(wildcards)),
        seed=CONFIG.image_seed,
        device=DEVICE,
    shell:
        "labelworth make-labels --images {input.images:q} --label-spec {wildcards.labels}"
        " --expert-checkpoints {params.checkpoints} --seed {params.seed} --out {output:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"


rule class_similarity:
    input:
        **LAYOUT.data_files(),
        expert=label_checkpoint_folders,
    output:
        LAYOUT.class_similarity("{labels}"),
    log:
        LAYOUT.log("class_similarity", "{labels}"),
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpu_resource(),
    params:
        checkpoint=lambda wildcards: label_checkpoints(wildcards)[0],
        device=DEVICE,
    shell:
        "labelworth class-similarity --data-dir $(dirname {input.train:q}) --expert-checkpoint {params.checkpoint:q}"
        " --out {output:q} --device {params.device} --threads {threads} > {log:q} 2>&1"
