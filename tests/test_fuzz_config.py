"""A config fuzzer: mutants of the default and tiny configs (deleted keys, misspelt keys, changed types,
out-of-range numbers, floats for whole numbers, strings for numbers, unknown label specs) either pass
every check and plan jobs whose settings the CLI reads back, or stop with one-line `config error`s.
None may raise anything but a LabelworthError, and every mutant the config model accepts, the JSON
schema generated from it accepts too. The grammars (label specs, image sets) get the same treatment.
Fixed examples and seed (derandomize), so it runs the same in every `make test`."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labelworth.errors import LabelworthError
from labelworth.plan import WorkflowPlan, load_checked_config, student_runs
from labelworth.schema import config_schema
from labelworth.settings import (SETTINGS_BY_METHOD, ExpertSettings, ExternalImageSetSettings, StudentSettings,
                                 from_options, to_options)
from labelworth.specs import (format_image_set, format_label_spec, parse_arch, parse_image_set,
                              parse_label_spec)

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {name: yaml.safe_load((ROOT / path).read_text())
           for name, path in (("default", "config.yaml"), ("tiny", "tests/config.tiny.yaml"))}
SCHEMA = config_schema()
FUZZ = settings(max_examples=200, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def key_paths(node, path=()):
    """Every path to a value inside the config (dict keys and list positions)."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from key_paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from key_paths(value, path + (index,))


def parent_and_key(config, path):
    node = config
    for part in path[:-1]:
        node = node[part]
    return node, path[-1]


REPLACEMENTS = st.one_of(
    st.integers(-3, 10_000), st.floats(-10, 1e4), st.sampled_from([float("nan"), float("inf")]), st.booleans(),
    st.sampled_from(["", "auto", "1e-3", "x", "expert-e2-swap99", "ensemble9-e2", "expert-e999", "resnet18",
                     "convnet-d9", "vgg11", "hard", "noise2", "learned", "random-ipc0"]),
    st.just(None), st.just([]), st.just({}), st.lists(st.integers(-1, 60), max_size=3))


@st.composite
def mutants(draw):
    name = draw(st.sampled_from(sorted(CONFIGS)))
    config = copy.deepcopy(CONFIGS[name])
    for _ in range(draw(st.integers(1, 2))):
        paths = [path for path in key_paths(config) if path]
        path = draw(st.sampled_from(paths))
        parent, key = parent_and_key(config, path)
        kind = draw(st.sampled_from(["delete", "misspell", "replace", "float", "scale"]))
        if kind == "delete":
            parent.pop(key) if isinstance(parent, dict) else parent.pop(key)
        elif kind == "misspell" and isinstance(parent, dict) and isinstance(key, str):
            parent[key + draw(st.sampled_from(["s", "_", "x"]))] = parent.pop(key)
        elif kind == "float" and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] = float(parent[key])
        elif kind == "scale" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * draw(st.sampled_from([-1, 0, 2, 1000]))
        else:
            parent[key] = draw(REPLACEMENTS)
    return config


def planned_settings_round_trip(raw) -> None:
    """What an accepted config's jobs are given: every protocol, run and method setting as the CLI
    reads it back, and every planned image set and label spec through its parser; and the generated
    schema accepts the config too."""
    import jsonschema

    jsonschema.validate(raw, SCHEMA)
    config = load_checked_config(raw)
    plan = WorkflowPlan(config)
    for experiment in config.enabled_experiments():
        for image_set, labels, student in student_runs(config, experiment):
            spec = parse_image_set(image_set)
            assert format_image_set(spec) == image_set and parse_label_spec(labels)
            settings_ = plan.student_settings(image_set, student)
            assert from_options(StudentSettings, to_options(settings_)) == settings_
    for expert in plan.experts():
        job = plan.expert_job(expert)
        assert from_options(ExpertSettings, to_options(job)) == job
        parse_arch(job.arch)
    for method in ("dm", "mtt", "bptt", "sre2l"):
        settings_ = config.method(method)
        assert from_options(SETTINGS_BY_METHOD[method], to_options(settings_)) == settings_


@FUZZ
@given(mutants())
def test_a_mutated_config_is_accepted_whole_or_refused_with_one_line_errors(config):
    try:
        load_checked_config(config)
    except LabelworthError as error:
        lines = str(error).splitlines()
        assert lines and all(line.strip() and len(line) < 2000 for line in lines)
        return
    planned_settings_round_trip(config)


TOKENS = st.sampled_from(["expert", "ensemble3", "-e", "2", "-t", "0.5", "-swap", "-top", "r", "-shuffle", "-smooth",
                          "-zeroclass", "-boost", "a", "0.1", "hard", "noise", "learned", "-", "e", "convnet-d3-w32",
                          "-lr0.01", "resnet18", "random", "-ipc", "-without", "lossbin", "dm", "10", "1e-05", ""])


@FUZZ
@given(st.lists(TOKENS, max_size=8).map("".join))
def test_the_grammars_parse_canonically_or_refuse_with_one_line(text):
    for parse, format_ in ((parse_label_spec, format_label_spec), (parse_image_set, format_image_set)):
        try:
            spec = parse(text)
        except LabelworthError as error:
            assert "\n" not in str(error) and text in str(error) or repr(text) in str(error)
            continue
        assert format_(spec) == text and parse(format_(spec)) == spec


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_unmutated_configs_pass_and_round_trip(name):
    planned_settings_round_trip(copy.deepcopy(CONFIGS[name]))


STAGE_SETTINGS = {"train-expert": lambda args: ExpertSettings, "evaluate-students": lambda args: StudentSettings,
                  "import-external-set": lambda args: ExternalImageSetSettings,
                  "distill-images": lambda args: SETTINGS_BY_METHOD.get(parse_image_set(args.image_set).method)}


def jobs_parse_their_arguments(workdir: Path, config: dict) -> int:
    """Dry-run `config` with snakemake and parse every planned `labelworth` command as its job would:
    the CLI's own argument parser, then the stage's settings from its `--options`. Returns the count."""
    import shlex
    import subprocess
    import sys

    from labelworth.cli import build_parser

    path = workdir / "mutant.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
                             "--configfile", str(path), "--cores", "1", "--dry-run", "--printshellcmds"],
                            capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    output = result.stdout + result.stderr  # snakemake prints the plan on stderr
    commands = [line.split("Shell command:", 1)[1].strip() for line in output.splitlines()
                if "Shell command: labelworth " in line]
    parser = build_parser()
    for command in commands:
        # The shell's own substitution first: $(dirname X) is X's folder.
        command = re.sub(r"\$\(dirname '?([^')]+)'?\)", lambda match: str(Path(match[1]).parent), command)
        argv = shlex.split(command.split(" > ")[0])[1:]
        args = parser.parse_args(argv)
        settings_class = STAGE_SETTINGS.get(args.stage, lambda args: None)(args)
        if settings_class is not None and getattr(args, "options", None):
            from_options(settings_class, args.options)
    return len(commands)


@settings(max_examples=6, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(mutants())
def test_an_accepted_mutant_builds_a_dag_whose_jobs_all_parse_their_arguments(tmp_path_factory, config):
    """A few accepted mutants go all the way through `snakemake -n` (the rest of the fuzzer stops at
    the checks, for time): every job the DAG plans must pass its own command-line parsing."""
    try:
        load_checked_config(copy.deepcopy(config))
    except LabelworthError:
        assume(False)
    assert jobs_parse_their_arguments(tmp_path_factory.mktemp("mutant"), config) > 0
