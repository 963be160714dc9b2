# One rule makes every image set: random real images, loss-ranked real images, and subsets of either.
rule distill_images:
    input:
        unpack(image_set_inputs),
    output:
        images=f"{RESULTS}/images/{{image_set}}/images.pt",
        grid=f"{RESULTS}/images/{{image_set}}/grid.png",
    log:
        f"{LOGS}/distill_images/{{image_set}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_resource(),
    params:
        sources=image_set_arguments,
        double_softmax=double_softmax_flag,
        seed=config["image_seed"],
        device=config["device"],
    shell:
        "labelworth distill-images --image-set {wildcards.image_set} {params.sources} {params.double_softmax}"
        " --seed {params.seed} --out {output.images:q} --grid {output.grid:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"
