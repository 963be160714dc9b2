# labelworth: soft labels vs distilled images ("A Label is Worth a Thousand Images", NeurIPS 2024).
# A table of contents: config, rule files (one per stage), and the targets of every enabled experiment.
from snakemake.utils import min_version

min_version("9.0")


# A config given with --configfile replaces this default in every process, with or without
# --replace-workflow-config: Snakemake starts remote (SLURM) jobs without that flag, and a merge
# there would bring back the default's experiments (and fail their checks).
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/experts.smk"
include: "workflow/rules/distill.smk"
include: "workflow/rules/external.smk"
include: "workflow/rules/labels.smk"
include: "workflow/rules/students.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        PLAN.targets(),
