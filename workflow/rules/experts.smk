# Experts train in an undeclared work/ folder and resume from it: Snakemake deletes declared outputs
# before a job and after a failure (labelworth/resume.py). A job trains one expert, `{expert}` =
# {run}/seed{seed}, for as many epochs as labelworth.plan.trained_epochs says: a run's first seed
# trains the run's epochs, the others only as far as ensembles and MTT's buffer need.
#
# The epoch count differs from job to job, so the rule declares the checkpoints/ folder rather than
# each epoch's file: one rule, whose name profiles can give resources to, serves every run. Jobs
# that read a checkpoint depend on its folder. With processes N > 1 (ImageNet) one job trains one
# expert data-parallel over N GPUs: it asks for gpu=N and starts N processes through torchrun.


rule train_expert:
    input:
        **LAYOUT.data_files(),
    output:
        checkpoints=directory(f"{LAYOUT.expert_folder('{expert}')}/checkpoints"),
        metrics=f"{LAYOUT.expert_folder('{expert}')}/metrics.csv",
    log:
        LAYOUT.log("train_expert", "{expert}"),
    benchmark:
        LAYOUT.benchmark("train_expert", "{expert}")
    wildcard_constraints:
        expert=any_of(PLAN.experts()),
    priority: expert_priority
    conda:
        "../../envs/labelworth.yaml"
    threads: expert_threads
    resources:
        mem_mb=lambda wildcards: 8000 * expert_processes(wildcards),
        runtime=720,
        gpu=lambda wildcards: gpu_resource() * expert_processes(wildcards),
    params:
        options=lambda wildcards: options(PLAN.expert_job(wildcards.expert)),
        work_dir=LAYOUT.expert_work("{expert}"),
        device=DEVICE,
    shell:
        "labelworth train-expert --data-dir $(dirname {input.train:q}) {params.options}"
        " --checkpoint-dir {output.checkpoints:q} --metrics {output.metrics:q}"
        " --work-dir {params.work_dir:q} --device {params.device} --threads {threads} > {log:q} 2>&1"


# An expert you bring (experts.<name>.checkpoint): its file read into the run's arch and stored as
# the checkpoint of its one epoch, with that epoch's accuracies, so that every job reads it as it
# reads a trained expert (labelworth/brought_experts.py). Its run is named by the file's content.
rule import_expert:
    input:
        **LAYOUT.data_files(),
        weights=lambda wildcards: PLAN.brought_job(wildcards.expert).checkpoint,
    output:
        checkpoints=directory(f"{LAYOUT.expert_folder('{expert}')}/checkpoints"),
        metrics=f"{LAYOUT.expert_folder('{expert}')}/metrics.csv",
    log:
        LAYOUT.log("import_expert", "{expert}"),
    wildcard_constraints:
        expert=any_of(PLAN.brought_experts()),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=lambda wildcards: gpu_resource(),
    params:
        options=lambda wildcards: options(PLAN.brought_job(wildcards.expert)),
        device=DEVICE,
    shell:
        "labelworth import-expert --data-dir $(dirname {input.train:q}) {params.options}"
        " --checkpoint-dir {output.checkpoints:q} --metrics {output.metrics:q} --device {params.device}"
        " --threads {threads} > {log:q} 2>&1"


# The replay buffer of trajectory matching (mtt): the buffered experts' weights for epochs
# 0..max_start_epoch + expert_epochs in one file (labelworth/trajectories.py has the layout).
rule dump_trajectories:
    input:
        PLAN.buffer_checkpoint_dirs(),
    output:
        LAYOUT.trajectories("{run}"),
    log:
        LAYOUT.log("dump_trajectories", "{run}"),
    wildcard_constraints:
        run=any_of([CONFIG.mtt_buffer[0]]),
    priority: CRITICAL_PATH_PRIORITY
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        # written as before the config model, so that finished runs keep their buffer and MTT's sets
        checkpoint_dirs=lambda wildcards: " ".join(f"'{folder}'" for folder in PLAN.buffer_checkpoint_dirs()),
        epochs=trajectory_epochs(CONFIG),
    shell:
        "labelworth dump-trajectories --checkpoint-dirs {params.checkpoint_dirs} --epochs {params.epochs}"
        " --out {output:q} > {log:q} 2>&1"
