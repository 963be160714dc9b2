# Image sets distilled elsewhere (external_image_sets; labelworth/external.py). The IPC is counted
# from the files, so inspect_external_set is a checkpoint: it reads and checks the set and writes its
# summary, and only then does the benchmark plan the set's populations (specs.external_set).
# external_image_set writes the set as images.pt; export_image_set_* write a set of this workflow
# in other codebases' layouts (the default config reads one back as an external set).


checkpoint inspect_external_set:
    input:
        unpack(external_set_inputs),
    output:
        LAYOUT.external_summary("{name}"),
    log:
        LAYOUT.log("inspect_external_set", "{name}"),
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=lambda wildcards: options(CONFIG.external_image_sets[wildcards.name]),
    shell:
        "labelworth import-external-set --name {wildcards.name} {params.options} --data-dir $(dirname {input.train:q})"
        " --summary {output:q} --threads {threads} > {log:q} 2>&1"


rule external_image_set:
    input:
        unpack(external_set_inputs),
        summary=LAYOUT.external_summary("{name}"),
    output:
        images=LAYOUT.images(external_set("{name}", "{ipc}")),
        grid=f"{LAYOUT.image_folder(external_set('{name}', '{ipc}'))}/grid.png",
    log:
        LAYOUT.log("external_image_set", external_set("{name}", "{ipc}")),
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=lambda wildcards: options(CONFIG.external_image_sets[wildcards.name]),
        image_set=lambda wildcards: external_set(wildcards.name, wildcards.ipc),
    shell:
        "labelworth import-external-set --name {wildcards.name} {params.options} --data-dir $(dirname {input.train:q})"
        " --image-set {params.image_set} --out {output.images:q} --grid {output.grid:q}"
        " --threads {threads} > {log:q} 2>&1"


rule export_image_set_pt:
    input:
        images=LAYOUT.images("{image_set}"),
        train=LAYOUT.data("train"),
    output:
        images=f"{LAYOUT.export('{image_set}', 'pt')}/images_best.pt",
        labels=f"{LAYOUT.export('{image_set}', 'pt')}/labels_best.pt",
    log:
        LAYOUT.log("export_image_set", "{image_set}-pt"),
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth export-image-set --images {input.images:q} --data-dir $(dirname {input.train:q}) --layout pt"
        " --out-dir $(dirname {output.images:q}) > {log:q} 2>&1"


rule export_image_set_imagefolder:
    input:
        images=LAYOUT.images("{image_set}"),
        train=LAYOUT.data("train"),
    output:
        directory(LAYOUT.export("{image_set}", "imagefolder")),
    log:
        LAYOUT.log("export_image_set", "{image_set}-imagefolder"),
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth export-image-set --images {input.images:q} --data-dir $(dirname {input.train:q})"
        " --layout imagefolder --out-dir {output:q} > {log:q} 2>&1"
