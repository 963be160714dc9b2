rule distill_images:
    input:
        **data_files(),
    output:
        images=f"{RESULTS}/images/{{method}}-ipc{{ipc}}/images.pt",
        grid=f"{RESULTS}/images/{{method}}-ipc{{ipc}}/grid.png",
    log:
        f"{LOGS}/distill_images/{{method}}-ipc{{ipc}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        seed=config["image_seed"],
    shell:
        "labelworth distill-images --method {wildcards.method} --data-dir $(dirname {input.train:q})"
        " --images-per-class {wildcards.ipc} --seed {params.seed}"
        " --out {output.images:q} --grid {output.grid:q} > {log:q} 2>&1"
