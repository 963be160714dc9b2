rule make_labels:
    input:
        images=f"{RESULTS}/images/{{method}}-ipc{{ipc}}/images.pt",
        experts=expert_checkpoints_for_labels,
    output:
        f"{RESULTS}/labels/{{method}}-ipc{{ipc}}/{{labels}}.pt",
    log:
        f"{LOGS}/make_labels/{{method}}-ipc{{ipc}}_{{labels}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        device=config["device"],
    shell:
        "labelworth make-labels --images {input.images:q} --label-spec {wildcards.labels}"
        " --expert-checkpoints {input.experts:q} --out {output:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"
