# distill_images makes the real-image sets (random, loss-ranked) and the subsets of any set;
# synthesise_images makes the synthetic sets (dm, mtt, bptt, sre2l), which also draw their loss
# curve and resume from an undeclared work folder (labelworth/distill/synthesis.py).
rule distill_images:
    input:
        unpack(image_set_inputs),
    output:
        images=LAYOUT.images("{image_set}"),
        grid=f"{LAYOUT.image_folder('{image_set}')}/grid.png",
    log:
        LAYOUT.log("distill_images", "{image_set}"),
    wildcard_constraints:
        image_set=rf"{REAL_SET_PATTERN}(-without\d+)?|{SYNTHETIC_SET_PATTERN}-without\d+",
    conda:
        "../../envs/labelworth.yaml"
    threads: image_set_threads
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_resource(),
    params:
        sources=image_set_arguments,
        options=image_set_options,
        seed=CONFIG.image_seed,
        device=DEVICE,
    shell:
        "labelworth distill-images --image-set {wildcards.image_set} {params.sources} {params.options}"
        " --seed {params.seed} --out {output.images:q} --grid {output.grid:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"


rule synthesise_images:
    input:
        unpack(image_set_inputs),
    output:
        images=LAYOUT.images("{image_set}"),
        grid=f"{LAYOUT.image_folder('{image_set}')}/grid.png",
        loss_csv=f"{LAYOUT.image_folder('{image_set}')}/loss_curve.csv",
        loss_png=f"{LAYOUT.image_folder('{image_set}')}/loss_curve.png",
    log:
        LAYOUT.log("distill_images", "{image_set}"),
    benchmark:
        LAYOUT.benchmark("synthesise_images", "{image_set}")
    wildcard_constraints:
        image_set=SYNTHETIC_SET_PATTERN,
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=gpu_resource(),
    params:
        sources=image_set_arguments,
        options=image_set_options,
        seed=CONFIG.image_seed,
        work_dir=LAYOUT.synthesis_work("{image_set}"),
        device=DEVICE,
    shell:
        "labelworth distill-images --image-set {wildcards.image_set} {params.sources} {params.options}"
        " --seed {params.seed} --work-dir {params.work_dir:q} --out {output.images:q} --grid {output.grid:q}"
        " --loss-csv {output.loss_csv:q} --loss-png {output.loss_png:q}"
        " --device {params.device} --threads {threads} > {log:q} 2>&1"
