# Experts train in an undeclared work/ folder and resume from it: Snakemake deletes declared outputs
# before a job and after a failure (labelworth/resume.py). A job trains one expert, `{expert}` =
# {arch}-lr{lr}/seed{seed}, for as many epochs as labelworth.plan.trained_epochs says: a run's first
# seed trains the run's epochs, the others only as far as ensembles and MTT's buffer need.
#
# A rule declares every epoch's checkpoint, so its epoch count is fixed: there is one rule per
# (epochs, processes) in use, made by the loop below (`use rule` cannot take a computed name, and
# the loop is the one definition). With processes N > 1 (ImageNet) one job trains one expert
# data-parallel over N GPUs: it asks for gpu=N and starts N processes through torchrun.


for (epochs, processes), experts in EXPERT_RULES.items():

    rule:
        name:
            f"train_expert_e{epochs}" + (f"_p{processes}" if processes > 1 else "")
        input:
            **data_files(),
        output:
            **expert_outputs(epochs),
        log:
            f"{LOGS}/train_expert/{{expert}}.log",
        benchmark:
            f"{LOGS}/benchmarks/train_expert/{{expert}}.tsv"
        wildcard_constraints:
            expert=any_of(experts),
        conda:
            "../../envs/labelworth.yaml"
        threads: expert_threads(processes)
        resources:
            mem_mb=8000 * processes,
            runtime=720,
            gpu=gpu_resource() * processes,
        params:
            options=lambda wildcards: options(expert_job_settings(wildcards.expert)),
            work_dir=f"work/{DATASET}/experts/{{expert}}",
            device=config["device"],
        shell:
            "labelworth train-expert --data-dir $(dirname {input.train:q}) {params.options}"
            " --checkpoint-dir $(dirname {output.checkpoints[0]:q}) --metrics {output.metrics:q}"
            " --work-dir {params.work_dir:q} --device {params.device} --threads {threads} > {log:q} 2>&1"


# The replay buffer of trajectory matching (mtt): the buffered experts' weights for epochs
# 0..max_start_epoch + expert_epochs in one file (labelworth/trajectories.py has the layout).
rule dump_trajectories:
    input:
        trajectory_checkpoints,
    output:
        f"{RESULTS}/trajectories/{{run}}.pt",
    log:
        f"{LOGS}/dump_trajectories/{{run}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        checkpoint_dirs=lambda wildcards: " ".join(f"'{folder}'" for folder in trajectory_checkpoint_dirs(wildcards)),
        epochs=lambda wildcards: trajectory_epochs(config),
    shell:
        "labelworth dump-trajectories --checkpoint-dirs {params.checkpoint_dirs} --epochs {params.epochs}"
        " --out {output:q} > {log:q} 2>&1"
