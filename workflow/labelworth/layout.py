"""The results tree: where every stage writes what it makes, in one place.

Plain Python (no torch). The Snakemake rules, the planner and `labelworth evaluate` all build their
paths here; called with a wildcard such as "{image_set}" a method returns the rule's pattern.

    results/{run}/                                             one config's run (its `run:`)
      data/{train,test}.pt                                     prepared splits (validation.pt: held out)
      experts/{run}/seed{seed}/checkpoints/epoch_XXX.pt        one file per epoch (0: the initialisation)
      experts/{run}/seed{seed}/metrics.csv                     loss and accuracies per epoch
      trajectories/{run}.pt                                    MTT's replay buffer
      images/{image set}/images.pt, grid.png                   an image set (synthetic: loss_curve.*)
      labels/{image set}/{label spec}.pt                       its labels under a label spec
      students/{image set}/{label spec}/{protocol}.json        a population of students
      populations/{experiment}/{image set}/{protocol}.json     label sets trained as one population
      analysis/class_similarity-{label spec}.csv               an expert's mean soft label per class
      external/{name}.json                                     an external set's summary
      exports/{image set}/{pt,imagefolder}                     a set in another codebase's layout
      figures/{name}.{png,pdf}, tables/{name}.{csv,md}         the figures and their tables
"""

from __future__ import annotations

from dataclasses import dataclass

from labelworth.specs import checkpoint_name, format_expert


@dataclass(frozen=True)
class Layout:
    """The results tree of one config's run, under `root` (results/{run}), its logs, and the undeclared
    folders long stages resume from (`work`)."""

    root: str
    logs: str
    work: str

    @staticmethod
    def of(run: str) -> "Layout":
        return Layout(f"results/{run}", f"logs/{run}", f"work/{run}")

    def data(self, split: str) -> str:
        return f"{self.root}/data/{split}.pt"

    def data_files(self, validation: bool = False) -> dict[str, str]:
        """The prepared splits by name; `validation`: with the held-out validation split."""
        return {"train": self.data("train"), "test": self.data("test")} | (
            {"validation": self.data("validation")} if validation else {})

    def expert_dir(self, run: str, seed: int) -> str:
        return self.expert_folder(format_expert(run, seed))

    def expert_folder(self, expert: str) -> str:
        """A trained expert's folder by its `{expert}` wildcard, {run}/seed{seed}."""
        return f"{self.root}/experts/{expert}"

    def checkpoints(self, run: str, seed: int) -> str:
        return f"{self.expert_dir(run, seed)}/checkpoints"

    def checkpoint(self, run: str, seed: int, epoch: int) -> str:
        return f"{self.checkpoints(run, seed)}/{checkpoint_name(epoch)}"

    def metrics(self, run: str, seed: int) -> str:
        return f"{self.expert_dir(run, seed)}/metrics.csv"

    def expert_work(self, expert: str) -> str:
        """The undeclared folder an expert trains and resumes in."""
        return f"{self.work}/experts/{expert}"

    def synthesis_work(self, image_set: str) -> str:
        """The undeclared folder a synthesis run resumes from."""
        return f"{self.work}/distill/{image_set}"

    def trajectories(self, run: str) -> str:
        return f"{self.root}/trajectories/{run}.pt"

    def image_folder(self, image_set: str) -> str:
        return f"{self.root}/images/{image_set}"

    def images(self, image_set: str) -> str:
        return f"{self.image_folder(image_set)}/images.pt"

    def labels(self, image_set: str, labels: str) -> str:
        return f"{self.root}/labels/{image_set}/{labels}.pt"

    def student(self, image_set: str, labels: str, student: str) -> str:
        return f"{self.root}/students/{image_set}/{labels}/{student}.json"

    def population(self, experiment: str, image_set: str, student: str) -> str:
        """The students of every label set `experiment` compares on `image_set`, trained as one
        population (student_populations: per_image_set)."""
        return f"{self.root}/populations/{experiment}/{image_set}/{student}.json"

    def class_similarity(self, labels: str) -> str:
        """The mean soft label per class of the expert an (untransformed) expert label spec names."""
        return f"{self.root}/analysis/class_similarity-{labels}.csv"

    def external_summary(self, name: str) -> str:
        return f"{self.root}/external/{name}.json"

    def export(self, image_set: str, layout: str) -> str:
        """A set written in another codebase's layout: pt (MTT's) or imagefolder."""
        return f"{self.root}/exports/{image_set}/{layout}"

    def figure(self, name: str, suffix: str) -> str:
        return f"{self.root}/figures/{name}.{suffix}"

    def table(self, name: str, suffix: str) -> str:
        return f"{self.root}/tables/{name}.{suffix}"

    def log(self, rule: str, name: str) -> str:
        return f"{self.logs}/{rule}/{name}.log"

    def benchmark(self, rule: str, name: str) -> str:
        """A rule's benchmark file (Snakemake's time and memory of the job)."""
        return f"{self.logs}/benchmarks/{rule}/{name}.tsv"
