"""The config's JSON schema, generated from the config model (labelworth/config.py) so that the two
cannot drift: every key, type, default, range and choice list comes from the settings classes, and
each key's description from the comment on its field's line.

`labelworth config-schema` prints it, for editors that complete and check YAML against a schema.
The workflow itself checks a config by building its model, which says the same in one line per
problem, and more: JSON Schema counts 4.0 as a whole number, and cannot say what lies between keys
(an empty path, an epoch past a run's training), so the schema accepts whatever the model accepts
(a test checks it) but not the other way round.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import typing

from labelworth.settings import PER_IPC, ByIpc, field_types, is_block, is_union, may_be_empty, required_keys

_FIELD_COMMENT = re.compile(r"^\s+(\w+): .*?#\s*(.+)$")


@functools.cache
def field_comments(settings_class) -> dict[str, str]:
    """Field name -> the comment on its line in the class body (and in the classes it extends)."""
    comments = {}
    for cls in reversed(settings_class.__mro__):
        if not dataclasses.is_dataclass(cls):
            continue
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError):
            continue
        for line in source.splitlines():
            if match := _FIELD_COMMENT.match(line):
                comments[match[1]] = match[2].strip()
    return comments


def _limits(settings_class, name: str) -> dict:
    """The JSON Schema keywords of a number field's (or its items') declared range."""
    limits = {}
    if name in settings_class.positive:
        limits["exclusiveMinimum"] = 0
    if name in settings_class.non_negative:
        limits["minimum"] = 0
    if name in settings_class.at_least_one:
        limits["minimum"] = 1
    if name in settings_class.at_most:
        limits["maximum"] = settings_class.at_most[name]
    if name in settings_class.below:
        limits["exclusiveMaximum"] = settings_class.below[name]
    return limits


def _value_schema(hint, settings_class, name: str) -> dict:
    """The schema of a value of `hint`, a field `name` of `settings_class` or an item of it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_union(hint):  # None: the key written without a value, as YAML reads `key:`
        alternatives = [_value_schema(arg, settings_class, name) for arg in args if arg is not type(None)]
        alternatives += [{"type": "null"}] if type(None) in args else []
        return alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}
    if origin is typing.Literal:
        return {"const": args[0]} if len(args) == 1 else {"enum": list(args)}
    if origin is tuple:
        schema = {"type": "array", "items": _value_schema(args[0], settings_class, name)}
        if not may_be_empty(settings_class, name):
            schema["minItems"] = 1
        if name not in settings_class.may_repeat:
            schema["uniqueItems"] = True
        return schema
    if origin is dict:  # written without a value, it has no entries
        schema = {"type": ["object", "null"], "additionalProperties": _value_schema(args[1], settings_class, name)}
        if name in settings_class.patterns:
            schema["propertyNames"] = {"pattern": f"^(?:{settings_class.patterns[name]})$"}
        if not may_be_empty(settings_class, name):
            schema["minProperties"] = 1
        return schema
    if origin is ByIpc:
        return block_schema(args[0], per_ipc=True)
    if dataclasses.is_dataclass(hint):
        return block_schema(hint)
    schema = {"type": {int: "integer", float: "number", bool: "boolean", str: "string"}[hint]}
    if hint in (int, float):
        schema |= _limits(settings_class, name)
    if hint is str and name in settings_class.choices:
        schema["enum"] = list(settings_class.choices[name])
    elif hint is str and name in settings_class.patterns:
        schema["pattern"] = f"^(?:{settings_class.patterns[name]})$"
    if name in settings_class.yaml_booleans:
        return {"oneOf": [{"type": "boolean"}, schema]}
    return schema


def _properties(settings_class, optional: bool = False) -> tuple[dict, list[str]]:
    """(properties, required keys) of a settings class's mapping; `optional`: none required."""
    hints = field_types(settings_class)
    comments = field_comments(settings_class)
    properties, required = {}, []
    for field in dataclasses.fields(settings_class):
        name = field.name
        if name == settings_class.flattened:
            flat, flat_required = _properties(typing.get_args(hints[name])[0], optional)
            properties |= flat | {PER_IPC: _per_ipc_schema(typing.get_args(hints[name])[0])}
            required += flat_required
            continue
        schema = _value_schema(hints[name], settings_class, name)
        default = field.default
        if default is not dataclasses.MISSING and default is not None and not is_block(type(default)):
            schema["default"] = list(default) if isinstance(default, tuple) else default
        if name in comments:
            schema["description"] = comments[name]
        properties[name] = schema
        if not optional and name in required_keys(settings_class):
            required.append(name)
    return properties, required


def _per_ipc_schema(settings_class) -> dict:
    properties, _ = _properties(settings_class, optional=True)
    return {"type": ["array", "null"], "description": f"per-IPC overrides of this block, each {{images_per_class: n, "
            f"<key>: value, ...}}", "items": {
                "type": "object", "additionalProperties": False, "required": ["images_per_class"],
                "properties": {"images_per_class": {"type": "integer", "minimum": 1}} | properties}}


def block_schema(settings_class, per_ipc: bool = False) -> dict:
    """The schema of one config block: a mapping of the class's keys, no others."""
    properties, required = _properties(settings_class)
    if per_ipc:
        properties[PER_IPC] = _per_ipc_schema(settings_class)
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    doc = inspect.getdoc(settings_class)
    if doc and not doc.startswith(settings_class.__name__ + "("):  # dataclass's generated signature
        schema["description"] = " ".join(doc.split())
    return schema


def config_schema() -> dict:
    """The JSON schema (draft 2020-12) of a labelworth config."""
    from labelworth.config import Config

    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "labelworth config",
            **block_schema(Config)}


def _type_text(schema: dict) -> str:
    """A schema's type in words: `integer`, `list of number`, `mapping of name -> block`, ..."""
    if "oneOf" in schema:
        options = [option for option in schema["oneOf"] if option.get("type") != "null"]
        empty = " (or empty)" if len(options) < len(schema["oneOf"]) else ""
        return " or ".join(dict.fromkeys(_type_text(option) for option in options)) + empty
    if "const" in schema or "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema.get("enum", [schema.get("const")]))
    kinds = schema.get("type", "")
    kinds = [kind for kind in (kinds if isinstance(kinds, list) else [kinds]) if kind != "null"]
    kind = kinds[0] if kinds else "any"
    if kind == "array":
        return "list of " + _type_text(schema.get("items", {}))
    if kind == "object":
        return "mapping of name -> block" if "additionalProperties" in schema and not schema.get("properties") \
            else "block"
    return kind + (f" matching `{schema['pattern'][4:-2]}`" if "pattern" in schema else "")


def _limits_text(schema: dict) -> str:
    words = {"minimum": ">= {}", "exclusiveMinimum": "> {}", "maximum": "<= {}", "exclusiveMaximum": "< {}"}
    return ", ".join(text.format(schema[key]) for key, text in words.items() if key in schema)


def _reference_rows(schema: dict, path: str, required: set) -> list[str]:
    """One markdown row per key of a block (and, below it, of its sub-blocks), depth first."""
    rows = []
    for name, value in schema.get("properties", {}).items():
        key = f"{path}{name}"
        default = value.get("default")
        if PER_IPC in path:  # an override: its default is the block's value
            default = "required" if name in required else "the block's"
        else:
            default = "required" if name in required else ("" if default is None else f"`{json_text(default)}`")
        description = "; ".join(filter(None, [value.get("description", ""), _limits_text(value)]))
        rows.append(f"| `{key}` | {_type_text(value)} | {default} | {description} |".replace("\n", " "))
        for nested, suffix in _nested_blocks(value):
            rows += _reference_rows(nested, f"{key}{suffix}.", set(nested.get("required", ())))
    return rows


def _nested_blocks(schema: dict) -> list[tuple[dict, str]]:
    """The blocks under a key: itself, a mapping's values (`.<name>`), a list's items (`[]`), each option."""
    if "oneOf" in schema:
        return [block for option in schema["oneOf"] for block in _nested_blocks(option)]
    if schema.get("properties"):
        return [(schema, "")]
    if isinstance(schema.get("additionalProperties"), dict):
        return [(block, ".<name>" + suffix) for block, suffix in _nested_blocks(schema["additionalProperties"])]
    if isinstance(schema.get("items"), dict):
        return [(block, "[]" + suffix) for block, suffix in _nested_blocks(schema["items"])]
    return []


def json_text(value) -> str:
    import json

    return json.dumps(value)


def config_reference() -> str:
    """docs/configuration.md: every key of the config with its type, default, range and description,
    generated from the config model (through its schema), so that the page cannot drift from the code.

    Property (tests): every key of the schema, at every depth, has a row."""
    schema = config_schema()
    header = ["# Configuration reference", "",
              "Generated from the config model by `labelworth config-reference > docs/configuration.md`; "
              "a test fails when this page and the model differ. `config.yaml` shows the default values in "
              "use, with comments; `labelworth check-config --configfile FILE` checks a file the way the "
              "workflow does. `<name>` stands for a name you choose; `[]` for each item of a list; "
              "`by_images_per_class` overrides a block's keys at one IPC.", "",
              "| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(header + _reference_rows(schema, "", set(schema.get("required", ())))) + "\n"
