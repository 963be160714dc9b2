# Experts train in an undeclared work/ folder and resume from it: Snakemake deletes declared outputs
# before a job and after a failure (see labelworth/experts.py). The first seed is the expert of every
# single-expert label and trains for expert.epochs; the other seeds only serve ensembles, so they stop
# at the latest epoch an ensemble label uses.
#
# With expert.processes N > 1 (ImageNet) one job trains one expert data-parallel over N GPUs: it asks
# for gpu=N and starts N processes through torchrun (labelworth/experts_distributed.py). With 1, the
# command and params are exactly the single-process ones, so finished jobs are not rerun.
TRAIN_EXPERT_COMMAND = (
    "labelworth train-expert --data-dir $(dirname {input.train:q}) --arch {wildcards.arch}"
    " --lr {wildcards.lr} --seed {wildcards.seed} --epochs {params.epochs}"
    " --batch-size {params.batch_size} --checkpoint-dir $(dirname {output.checkpoints[0]:q})"
    " --metrics {output.metrics:q} --work-dir {params.work_dir:q}"
    + (" --processes {params.processes}" if EXPERT_PROCESSES > 1 else "")
    + " --device {params.device} --threads {threads} > {log:q} 2>&1"
)


# The params after `epochs`, in the order single-process jobs have always had them.
TRAIN_EXPERT_PARAMS = {
    "batch_size": EXPERT["batch_size"],
    "work_dir": f"work/{DATASET}/experts/{{arch}}-lr{{lr}}/seed{{seed}}",
    "device": config["device"],
} | ({"processes": EXPERT_PROCESSES} if EXPERT_PROCESSES > 1 else {})


rule train_expert:
    input:
        **data_files(),
    output:
        **expert_outputs(EXPERT["epochs"]),
    log:
        f"{LOGS}/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.tsv"
    wildcard_constraints:
        arch=re.escape(EXPERT["arch"]),
        seed=str(MAIN_SEED),
    conda:
        "../../envs/labelworth.yaml"
    threads: EXPERT_THREADS
    resources:
        mem_mb=8000 * EXPERT_PROCESSES,
        runtime=720,
        gpu=gpu_resource() * EXPERT_PROCESSES,
    params:
        epochs=EXPERT["epochs"],
        **TRAIN_EXPERT_PARAMS,
    shell:
        TRAIN_EXPERT_COMMAND


# SRe2L's batch-norm teacher, when the experts have no batch norm: trained like the first expert,
# but only as far as the epoch SRe2L inverts (methods.sre2l.teacher_epoch).
rule train_sre2l_teacher:
    input:
        **data_files(),
    output:
        **expert_outputs(SRE2L_TEACHER_EPOCH),
    log:
        f"{LOGS}/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.tsv"
    wildcard_constraints:
        arch=re.escape(SRE2L_TEACHER_ARCH) if SRE2L_TEACHER_ARCH != EXPERT["arch"] else NEVER,
        seed=str(MAIN_SEED),
    conda:
        "../../envs/labelworth.yaml"
    threads: EXPERT_THREADS
    resources:
        mem_mb=8000 * EXPERT_PROCESSES,
        runtime=720,
        gpu=gpu_resource() * EXPERT_PROCESSES,
    params:
        epochs=SRE2L_TEACHER_EPOCH,
        **TRAIN_EXPERT_PARAMS,
    shell:
        TRAIN_EXPERT_COMMAND


rule train_ensemble_expert:
    input:
        **data_files(),
    output:
        **expert_outputs(ensemble_expert_epochs(config)),
    log:
        f"{LOGS}/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.log",
    benchmark:
        f"{LOGS}/benchmarks/train_expert/{{arch}}-lr{{lr}}_seed{{seed}}.tsv"
    wildcard_constraints:
        seed="|".join(str(seed) for seed in MEMBER_SEEDS) or NEVER,
    conda:
        "../../envs/labelworth.yaml"
    threads: EXPERT_THREADS
    resources:
        mem_mb=8000 * EXPERT_PROCESSES,
        runtime=720,
        gpu=gpu_resource() * EXPERT_PROCESSES,
    params:
        epochs=ensemble_expert_epochs(config),
        **TRAIN_EXPERT_PARAMS,
    shell:
        TRAIN_EXPERT_COMMAND


# The replay buffer of trajectory matching (mtt): the buffered experts' weights for epochs
# 0..max_start_epoch + expert_epochs in one file (labelworth/trajectories.py has the layout).
rule dump_trajectories:
    input:
        trajectory_checkpoints,
    output:
        f"{RESULTS}/trajectories/{{arch}}-lr{{lr}}.pt",
    log:
        f"{LOGS}/dump_trajectories/{{arch}}-lr{{lr}}.log",
    conda:
        "../../envs/labelworth.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        checkpoint_dirs=lambda wildcards: " ".join(f"'{folder}'" for folder in trajectory_checkpoint_dirs(wildcards)),
        epochs=trajectory_epochs(config),
    shell:
        "labelworth dump-trajectories --checkpoint-dirs {params.checkpoint_dirs} --epochs {params.epochs}"
        " --out {output:q} > {log:q} 2>&1"
