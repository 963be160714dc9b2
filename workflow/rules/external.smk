# Image sets distilled elsewhere (external_image_sets; labelworth/external.py). The IPC is counted
# from the files, so inspect_external_set is a checkpoint: it reads and checks the set and writes its
# summary, and only then does the benchmark plan the set's populations (external-{name}-ipc{n}).
# external_image_set writes the set as images.pt; export_image_set_* write a set of this workflow
# in other codebases' layouts (the default config reads one back as an external set).


checkpoint inspect_external_set:
    input:
        unpack(external_set_inputs),
    output:
        f"{RESULTS}/external/{{name}}.json",
    log:
        f"{LOGS}/inspect_external_set/{{name}}.log",
    wildcard_constraints:
        name=EXTERNAL_NAME_PATTERN,
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=lambda wildcards: options(external_set_settings(config, wildcards.name)),
    shell:
        "labelworth import-external-set --name {wildcards.name} {params.options} --data-dir $(dirname {input.train:q})"
        " --summary {output:q} --threads {threads} > {log:q} 2>&1"


rule external_image_set:
    input:
        unpack(external_set_inputs),
        summary=f"{RESULTS}/external/{{name}}.json",
    output:
        images=f"{RESULTS}/images/external-{{name}}-ipc{{ipc}}/images.pt",
        grid=f"{RESULTS}/images/external-{{name}}-ipc{{ipc}}/grid.png",
    log:
        f"{LOGS}/external_image_set/{{name}}-ipc{{ipc}}.log",
    wildcard_constraints:
        name=EXTERNAL_NAME_PATTERN,
    conda:
        "../../envs/labelworth.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=lambda wildcards: options(external_set_settings(config, wildcards.name)),
    shell:
        "labelworth import-external-set --name {wildcards.name} {params.options} --data-dir $(dirname {input.train:q})"
        " --image-set external-{wildcards.name}-ipc{wildcards.ipc} --out {output.images:q} --grid {output.grid:q}"
        " --threads {threads} > {log:q} 2>&1"


rule export_image_set_pt:
    input:
        images=f"{RESULTS}/images/{{image_set}}/images.pt",
        train=data_files()["train"],
    output:
        images=f"{RESULTS}/exports/{{image_set}}/pt/images_best.pt",
        labels=f"{RESULTS}/exports/{{image_set}}/pt/labels_best.pt",
    log:
        f"{LOGS}/export_image_set/{{image_set}}-pt.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth export-image-set --images {input.images:q} --data-dir $(dirname {input.train:q}) --layout pt"
        " --out-dir $(dirname {output.images:q}) > {log:q} 2>&1"


rule export_image_set_imagefolder:
    input:
        images=f"{RESULTS}/images/{{image_set}}/images.pt",
        train=data_files()["train"],
    output:
        directory(f"{RESULTS}/exports/{{image_set}}/imagefolder"),
    log:
        f"{LOGS}/export_image_set/{{image_set}}-imagefolder.log",
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    shell:
        "labelworth export-image-set --images {input.images:q} --data-dir $(dirname {input.train:q})"
        " --layout imagefolder --out-dir {output:q} > {log:q} 2>&1"
