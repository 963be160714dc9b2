# Figures read results files only; they are cheap, so they stay on the submit host on a cluster.
# Every figure has the same rule: its files by role in (labelworth.plan.WorkflowPlan.figure_inputs),
# its figure and table out, its settings as options. The expert-epoch sweep's is a checkpoint: its
# table decides what `expert_epoch: auto` means.


checkpoint figure_expert_epoch_sweep:
    input:
        **figure_inputs(SWEEP),
        external=PLAN.external_summaries(SWEEP),
    output:
        **figure_outputs(SWEEP),
    log:
        LAYOUT.log("figures", SWEEP),
    localrule: True
    conda:
        "../../envs/labelworth.yaml"
    params:
        name=SWEEP,
        files=figure_files(SWEEP),
        options=figure_options(SWEEP),
    shell:
        FIGURE_COMMAND


for figure in PLAN.figures():
    if figure == SWEEP:
        continue

    rule:
        name:
            figure_rule(figure)
        input:
            **figure_inputs(figure),
            # plain inputs: the external sets' summaries it plans from (PLAN.external_summaries)
            external=PLAN.external_summaries(figure),
        output:
            **figure_outputs(figure),
        log:
            LAYOUT.log("figures", figure),
        localrule: True
        conda:
            "../../envs/labelworth.yaml"
        params:
            name=figure,
            files=figure_files(figure),
            options=figure_options(figure),
        shell:
            FIGURE_COMMAND
