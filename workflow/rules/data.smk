rule prepare_data:
    output:
        **LAYOUT.data_files(CONFIG.validation),
    log:
        f"{LAYOUT.logs}/prepare_data.log",
    conda:
        "../../envs/labelworth.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        dataset=CONFIG.dataset,
        data_root=CONFIG.data_root,
        # A param, so that toggling `zca` reruns this rule and with it everything downstream.
        zca="--zca" if CONFIG.zca else "",
        # selection: validation holds a seeded slice of each class out of train.pt (validation.pt)
        validation=(
            f"--validation-per-class {CONFIG.validation_images_per_class} --validation-seed {CONFIG.image_seed}"
            if CONFIG.validation
            else ""
        ),
    shell:
        "labelworth prepare-data --dataset {params.dataset} --data-root {params.data_root:q} {params.zca} {params.validation}"
        " --out-dir $(dirname {output.train:q}) > {log:q} 2>&1"
