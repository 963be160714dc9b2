"""Checks of a workflow config that a JSON schema cannot express. Plain Python (no torch): Snakemake
runs them at parse time, so a bad config fails before any job starts, with one line naming the key.
The settings objects check their own values (labelworth/settings.py); this module builds every one
the config names and checks what lies between them.
"""

from __future__ import annotations

import re
from pathlib import Path

from labelworth.configured import (
    AUTO, close_match, block_expert_run, label_run, block_students, check_sre2l_teacher, default_expert_run, default_student, expert_run_names,
    expert_settings, external_set_names, external_set_settings,
    labels_folder, method_block, method_settings, run_folder, student_protocols, student_settings, trained_runs,
)
from labelworth.errors import LabelworthError
from labelworth.plan import (
    EXPERIMENT_BLOCK, STUDENT_EXPERIMENTS, SWEEP, as_list, enabled, epoch_settings, expert_label, per_ipc,
    soft_label_sources,
    student_runs, subject_classes, uses_method,
)
from labelworth.settings import overridden_ipcs
from labelworth.specs import LabelSpec, dataset_spec, parse_arch, parse_label_spec

# What PyYAML (YAML 1.1) leaves as a string although a person meant a number: 1e-3, 5E4, 1.0e3, .5e-2
_NUMBER_LOOKING_STRING = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


def load_config_file(path) -> dict:
    """A config file read as Snakemake reads it (YAML), but strictly: a missing file, a syntax error
    (with its line and column) or a key given twice in one mapping (YAML keeps the last one silently)
    is one LabelworthError naming the file."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise LabelworthError(f"{path}:{key_node.start_mark.line + 1}: the key `{key}` appears twice in one "
                                      f"mapping (first on line {seen[key] + 1}); YAML would keep the last one silently")
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LabelworthError(f"{path}: no such config file") from None
    except OSError as error:
        raise LabelworthError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        config = yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise LabelworthError(f"{path}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {error.problem}") from None
    if not isinstance(config, dict):
        raise LabelworthError(f"{path}: a config is a mapping of keys (dataset: ..., experts: ...), not a "
                              f"{type(config).__name__}")
    return config


def check_all(config: dict, schema: dict) -> None:
    """Every check of a loaded config, in the order the workflow runs them: numbers read as text
    (before the schema, whose message would only say "not a number"), the schema, the semantics."""
    check_number_strings(config)
    check_schema(config, schema)
    check_config(config)


def check_config_file(path, schema: dict) -> dict:
    """Every check of `labelworth check-config`: the file read strictly, then `check_all`."""
    config = load_config_file(path)
    check_all(config, schema)
    return config


def find_number_strings(node, path: str = "") -> list[str]:
    """Config keys whose value is a string that reads as a number in scientific notation."""
    if isinstance(node, dict):
        return [hit for key, value in node.items() for hit in find_number_strings(value, f"{path}{key}.")]
    if isinstance(node, list):
        return [hit for index, value in enumerate(node) for hit in find_number_strings(value, f"{path}{index}.")]
    if isinstance(node, str) and _NUMBER_LOOKING_STRING.fullmatch(node.strip()):
        return [f"{path.rstrip('.')}: {node!r}"]
    return []


def check_number_strings(config: dict) -> None:
    hits = find_number_strings(config)
    if hits:
        raise LabelworthError(
            f"{'; '.join(hits)} read as text, not a number: YAML needs a dot and a signed exponent, "
            "e.g. write 1.0e-3 instead of 1e-3"
        )


def _resolved(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].split("/")[-1]]
    return schema


def find_float_integers(node, schema: dict, root: dict, path: str = "") -> list[str]:
    """Key paths where the schema wants a whole number and the config has a float such as 4.0: JSON
    Schema counts 4.0 as an integer, but `--epochs 4.0` and `ipc4.0` would fail inside the jobs."""
    schema = _resolved(schema, root)
    alternatives = schema.get("oneOf", []) + schema.get("anyOf", [])
    if alternatives:
        return next((hits for hits in (find_float_integers(node, alt, root, path) for alt in alternatives) if hits), [])
    if schema.get("type") == "integer" and isinstance(node, float):
        return [f"{path.rstrip('.') or '(top)'}: {node!r}"]
    hits = []
    if isinstance(node, dict):
        for key, value in node.items():
            child = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
            if isinstance(child, dict):
                hits += find_float_integers(value, child, root, f"{path}{key}.")
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for index, value in enumerate(node):
            hits += find_float_integers(value, schema["items"], root, f"{path}{index}.")
    return hits


def _schema_problem(error, root: dict) -> str:
    """One line for one schema error: the key path, what was found, what is allowed."""
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = list(_resolved(error.schema, root).get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        return "; ".join(f"{where}: unknown key `{key}`{close_match(key, allowed)}; allowed: {', '.join(allowed)}"
                         for key in unknown)
    if error.validator == "required":
        return f"{where}: missing `{error.message.split(chr(39))[1]}`"
    found = repr(error.instance)
    found = found if len(found) <= 60 else found[:57] + "..."
    return f"{where}: {found}: {error.message.replace(repr(error.instance), 'the value')}"


def _misspelt(error, root: dict) -> bool:
    """A missing key whose block holds a close misspelling of it, where the block allows no other
    keys: the unknown-key line says both."""
    block = _resolved(error.schema, root)
    if error.validator != "required" or block.get("additionalProperties") is not False:
        return False
    key, known = error.message.split("'")[1], block.get("properties", {})
    return any(close_match(other, [key]) for other in error.instance if other not in known)


def check_schema(config: dict, schema: dict) -> None:
    """Raise one LabelworthError with one line per problem the JSON schema finds (and per whole
    number written as a float), instead of the validator's dump of the whole config."""
    import jsonschema  # a Snakemake dependency; imported here so the checks above stay importable without it

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=str)
    top = [error for error in errors if error.validator == "required" and not error.absolute_path]
    missing = [error.message.split("'")[1] for error in top]
    problems = [f"(top level): missing {', '.join(missing)}: a --configfile replaces config.yaml whole, so it must "
                "hold every required key; to change a few keys, copy config.yaml and edit it, or pass --config "
                "key=value"] if missing else []
    problems += [_schema_problem(error, schema) for error in errors if error not in top and not _misspelt(error, schema)]
    problems += [f"{hit} is not a whole number (write it without a decimal point)"
                 for hit in find_float_integers(config, schema, schema)]
    if problems:
        raise LabelworthError("\n".join(dict.fromkeys(problems)))


def check_label_spec(text: str, config: dict, where: str) -> LabelSpec:
    """Parse a label spec and check it against the trained expert runs and the classes."""
    try:
        spec = parse_label_spec(text)
    except LabelworthError as error:
        raise LabelworthError(f"{where}: {error}") from None
    if spec.uses_experts:
        folder = labels_folder(config, spec)
        run = trained_runs(config)[folder]
        if spec.expert_epoch > run.epochs:
            raise LabelworthError(
                f"{where}: label spec {text!r} uses expert epoch {spec.expert_epoch}, but the run {folder} trains "
                f"{run.epochs} epochs; raise its epochs or pick an epoch in 0..{run.epochs}")
        if spec.ensemble_size > len(run.seeds):
            raise LabelworthError(f"{where}: label spec {text!r} needs {spec.ensemble_size} experts, but the run "
                                  f"{folder} lists {len(run.seeds)} seeds")
    num_classes = dataset_spec(config["dataset"]).num_classes
    limits = {"swap": num_classes - 1, "top": num_classes, "zeroclass": num_classes - 1}
    for transform in spec.transforms:
        if transform.kind in limits and transform.value > limits[transform.kind]:
            raise LabelworthError(
                f"{where}: label spec {text!r}: {transform.kind} takes at most {limits[transform.kind]} "
                f"with {num_classes} classes"
            )
    return spec


def check_arch_fits(arch: str, dataset: str, where: str) -> None:
    """A ConvNet halves the image at each of its `depth` blocks (28-pixel images are padded to 32),
    so the image must keep at least one pixel: depth <= log2 of the size. A deeper one fails inside
    its first job (`Output size is too small`)."""
    spec, size = parse_arch(arch), dataset_spec(dataset).image_size
    padded = 32 if size == 28 else size
    if spec.family == "convnet" and padded >> spec.depth < 1:
        deepest = padded.bit_length() - 1
        raise LabelworthError(f"{where}: {arch} halves the {size}-pixel {dataset} images {spec.depth} times, "
                              f"below one pixel; use a depth of at most {deepest}")


def _check_images_per_class(config: dict, where: str, values) -> None:
    spec = dataset_spec(config["dataset"])
    for ipc in as_list(values):
        if ipc > spec.min_train_per_class:
            raise LabelworthError(
                f"{where}.images_per_class: {ipc} is more than the smallest {spec.name} class has "
                f"({spec.min_train_per_class} training images)"
            )


def _check_auto(config: dict, experiment: str) -> None:
    """`auto` needs the sweep, an IPC it swept, and the sweep's expert run (its best epochs are that
    run's); ensembles cannot wait for it (their experts' length is planned before the sweep runs)."""
    for where, value, ipcs in epoch_settings(config, experiment):
        if AUTO not in as_list(value):
            continue
        if experiment == "ensembles":
            raise LabelworthError(f"{where}: auto is not available for ensembles, whose extra experts are "
                                  "trained before the sweep has run; give an epoch")
        if not enabled(config, SWEEP):
            raise LabelworthError(f"{where} is auto, which needs the expert_epoch_sweep block enabled")
        swept = set(config[SWEEP]["images_per_class"])
        for ipc in ipcs:
            if ipc not in swept:
                raise LabelworthError(f"{where} is auto, but expert_epoch_sweep.images_per_class does not include {ipc}")
    sweep_run = run_folder(config, block_expert_run(config, config[SWEEP])) if enabled(config, SWEEP) else None
    block = config[EXPERIMENT_BLOCK[experiment]]
    if experiment == "soft_vs_hard":
        for index, source in enumerate(soft_label_sources(block)):
            for position, epoch in enumerate(source["expert_epoch"]):
                name = per_ipc(source.get("expert_run", block_expert_run(config, block)), position)
                if epoch == AUTO and run_folder(config, name) != sweep_run:
                    raise LabelworthError(
                        f"benchmark.soft_labels[{index}].expert_epoch is auto for run {name!r}, but the sweep "
                        f"finds the best epochs of {sweep_run}; give an epoch")
    elif AUTO in as_list(block.get("expert_epoch", [])) and run_folder(config, block_expert_run(config, block)) != sweep_run:
        raise LabelworthError(f"{EXPERIMENT_BLOCK[experiment]}.expert_epoch is auto, but the sweep finds the best "
                              f"epochs of {sweep_run}; give an epoch")


def _check_per_ipc_lists(block: dict, entry: dict, where: str, remedy: str) -> None:
    """An entry's expert_epoch and expert_run lists have one value per benchmark IPC."""
    for key in ("expert_epoch", "expert_run"):
        values = entry.get(key)
        if isinstance(values, list) and len(values) != len(block["images_per_class"]):
            raise LabelworthError(f"{where}.{key} has {len(values)} entries but benchmark.images_per_class has "
                                  f"{len(block['images_per_class'])}; {remedy}")


def _check_benchmark(config: dict) -> None:
    block = config["benchmark"]
    for index, source in enumerate(soft_label_sources(block)):
        _check_per_ipc_lists(block, source, f"benchmark.soft_labels[{index}]", "give one per IPC")
    for index, entry in enumerate(block.get("online_students", [])):
        _check_online_protocol(config, entry["student"], f"benchmark.online_students[{index}].student")
        _check_per_ipc_lists(block, entry, f"benchmark.online_students[{index}]", "give one, or one per IPC")
        if "expert_run" in entry and "expert_epoch" not in entry:
            raise LabelworthError(f"benchmark.online_students[{index}]: expert_run names the teacher's run, so give "
                                  "its expert_epoch too (without both, each soft-label source's expert teaches)")
        outside = sorted(set(entry.get("images_per_class", [])) - set(block["images_per_class"]))
        if outside:
            raise LabelworthError(f"benchmark.online_students[{index}].images_per_class: {outside} not in "
                                  f"benchmark.images_per_class {block['images_per_class']}")
        extra = sorted(set(entry["methods"]) - set(block["methods"]) - {"external"})
        if extra:
            raise LabelworthError(f"benchmark.online_students[{index}].methods: {', '.join(extra)} not in "
                                  "benchmark.methods, whose images the online rows relabel")
    relabel = method_block(config, "sre2l").get("relabel_student")
    if relabel:
        _check_online_protocol(config, relabel, "methods.sre2l.relabel_student")
    missing = set(block.get("synthesis_images_per_class", [])) - set(block["images_per_class"])
    if missing:
        raise LabelworthError(f"benchmark.synthesis_images_per_class: {sorted(missing)} not in "
                              "benchmark.images_per_class, whose entries give each IPC its expert epoch")


def _check_online_protocol(config: dict, name: str, where: str) -> None:
    """A protocol the benchmark's online rows name: it exists and relabels online."""
    try:
        settings = student_settings(config, name)
    except LabelworthError as error:
        raise LabelworthError(f"{where}: {error}") from None
    if settings.labels != "online":
        raise LabelworthError(f"{where}: protocol {name} has labels: {settings.labels}; online rows need "
                              f"students.{name}.labels: online")


def _check_names(config: dict) -> None:
    """Every run and protocol a block names exists (each lookup raises, with a close match)."""
    for experiment in STUDENT_EXPERIMENTS:
        if enabled(config, experiment):
            block = config[EXPERIMENT_BLOCK[experiment]]
            expert_settings(config, block_expert_run(config, block))
            for name in block_students(config, block):
                student_settings(config, name)
            for source in soft_label_sources(block) if experiment == "soft_vs_hard" else []:
                for name in as_list(source.get("expert_run", block_expert_run(config, block))):
                    expert_settings(config, name)
    for method, key in (("mtt", "expert_run"), ("sre2l", "teacher_run")):
        expert_settings(config, method_block(config, method).get(key, default_expert_run(config)))


def _check_external_sets(config: dict) -> None:
    """Each external set's settings, and its files: they must exist unless the workflow writes them
    (a path under results/, such as an exported set); what is in them is checked by the set's own job."""
    for name in external_set_names(config):
        settings = external_set_settings(config, name)
        if not enabled(config, "soft_vs_hard"):
            raise LabelworthError(f"external_image_sets.{name}: external sets are evaluated by the benchmark, "
                                  "which is disabled; enable it or remove the set")
        for key in ("path", "labels"):
            path = getattr(settings, key)
            if path and Path(path).parts[:1] != ("results",) and not Path(path).exists():
                raise LabelworthError(f"external_image_sets.{name}.{key}: {path} not found (paths are relative to "
                                      "the folder snakemake runs in)")


def check_config(config: dict) -> None:
    """Raise a LabelworthError naming the key for anything the schema cannot catch."""
    dataset = dataset_spec(config["dataset"])
    default_expert_run(config), default_student(config)  # each raises when several are listed and none is named
    for name in expert_run_names(config):
        settings = expert_settings(config, name)
        if settings.processes > 1 and dataset.cached_as_tensors:
            raise LabelworthError(f"experts.{name}.processes is {settings.processes}, but data-parallel experts are for "
                                  f"datasets read from image files (imagenet); {dataset.name} trains in one process")
    trained_runs(config)  # raises for two names of one run that disagree
    for name in expert_run_names(config):
        check_arch_fits(expert_settings(config, name).arch, dataset.name, f"experts.{name}.arch")
    for name in student_protocols(config):
        for ipc in overridden_ipcs(config["students"][name]):
            check_arch_fits(student_settings(config, name, ipc).arch, dataset.name, f"students.{name}.arch")
    _check_names(config)
    _check_benchmark(config)
    _check_external_sets(config)
    if uses_method(config, "sre2l"):
        check_sre2l_teacher(config)
    for method in config.get("methods", {}):
        for ipc in overridden_ipcs(method_block(config, method)):
            settings = method_settings(config, method, ipc)  # raises for unknown keys and bad values
            if hasattr(settings, "arch"):
                check_arch_fits(settings.arch, dataset.name, f"methods.{method}.arch")
    pictures = config.get("soft_label_pictures")
    if pictures and pictures.get("enabled", True):  # its labels are the figures', not a student experiment's
        run = label_run(config, block_expert_run(config, pictures))
        for key in ("expert_epochs", "similarity_epoch"):
            for epoch in as_list(pictures[key]):
                check_label_spec(expert_label(epoch, run=run), config, f"soft_label_pictures.{key}")
    if enabled(config, "zero_shot"):
        for subject in subject_classes(config):
            if subject >= dataset.num_classes:
                raise LabelworthError(
                    f"zero_shot.subject_classes: {subject} is not a class of {dataset.name} "
                    f"(0..{dataset.num_classes - 1})"
                )
    # `auto` epochs stand in as epoch 0 here, so labels waiting for the sweep are checked too.
    swept = config[SWEEP]["images_per_class"] if enabled(config, SWEEP) else []
    placeholder_epochs = {ipc: 0 for ipc in swept}
    for experiment in STUDENT_EXPERIMENTS:
        if not enabled(config, experiment):
            continue
        where = EXPERIMENT_BLOCK[experiment]
        _check_images_per_class(config, where, config[where]["images_per_class"])
        _check_auto(config, experiment)
        for image_set, label, _ in student_runs(config, experiment, placeholder_epochs):
            check_label_spec(label, config, f"{where} ({image_set})")

