"""Reading and validating the YAML configuration files.

Every YAML file the project reads goes through `load_validated_yaml`, which checks it against one
of the JSON schemas in `npu/schemas/` and turns any problem into a `ConfigError` that names the
file and the key, before any work starts. The Snakefile reads the pipeline's own configuration
the same way (`load_pipeline_config`), not with Snakemake's `validate`.
"""

from __future__ import annotations

import argparse
import copy
import functools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from npu.errors import UserError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_DIR = REPO_ROOT / "config"


class ConfigError(UserError, ValueError):
    """A configuration file is missing, unparsable or does not match its schema."""

    lists_problems = True  # one problem per line (see npu.errors.one_line)


def schema_path(name: str) -> Path:
    """Path of `npu/schemas/<name>.schema.yaml`."""
    path = SCHEMA_DIR / f"{name}.schema.yaml"
    if not path.is_file():
        raise ConfigError(f"no schema named {name!r} (looked for {path})")
    return path


def load_schema(name: str) -> dict:
    """The parsed schema (a fresh copy: callers may fill in defaults)."""
    return copy.deepcopy(_parse_schema(schema_path(name).read_text()))


@functools.cache
def _parse_schema(text: str) -> dict:
    """Parsed once per schema text: the pipeline validates dozens of presets while it builds its
    job graph, and parsing the schema each time made up a third of a no-op run."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# A YAML 128.0 is a float, not an integer (jsonschema's default integer type accepts it).
_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool))
_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER)
_TYPE_NAMES = {"integer": "int", "number": "float", "boolean": "bool", "string": "str", "array": "a list",
               "object": "a mapping"}


def _key_path(parts: list) -> str:
    return ".".join(str(p) for p in parts) if parts else "top level"


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """(dotted key, message) of one schema violation, in the project's words."""
    path, value, rule = list(error.absolute_path), error.instance, error.validator
    if rule == "required":
        missing = error.message.split("'")[1]  # "'vlen' is a required property"
        return _key_path(path + [missing]), "missing key"
    if rule == "additionalProperties" and isinstance(value, dict):
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(value) - set(known))[0]
        return _key_path(path + [unknown]), f"unknown key (expected: {', '.join(known)})"
    if rule == "type":
        wanted = error.validator_value if isinstance(error.validator_value, str) else error.validator_value[0]
        name = _TYPE_NAMES.get(wanted, wanted)
        got = type(value).__name__ if isinstance(value, (dict, list)) else repr(value)
        return _key_path(path), f"expected {name}, got {got}"
    if rule == "minimum":
        return _key_path(path), f"{value!r} must be at least {error.validator_value}"
    if rule == "exclusiveMinimum":
        bound = error.validator_value
        return _key_path(path), f"{value!r} must be {'positive' if bound == 0 else f'greater than {bound}'}"
    if rule == "maximum":
        return _key_path(path), f"{value!r} must be at most {error.validator_value}"
    if rule == "exclusiveMaximum":
        return _key_path(path), f"{value!r} must be less than {error.validator_value}"
    if rule == "enum":
        return _key_path(path), f"{value!r} is not one of {', '.join(map(str, error.validator_value))}"
    if rule == "const":
        return _key_path(path), f"{value!r} must be {error.validator_value!r}"
    if rule == "pattern":
        return _key_path(path), f"{value!r} does not match the pattern {error.validator_value}"
    return _key_path(path), error.message


def _with_defaults(instance: Any, schema: dict) -> Any:
    """Fill in `default` values of object properties, recursively (as snakemake's validate does)."""
    if not isinstance(instance, dict) or schema.get("type") != "object":
        return instance
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            instance[key] = _with_defaults(instance[key], sub)
    return instance


def validate_mapping(data: Any, schema_name: str, source: str) -> dict:
    """Validate `data` against a schema; return a copy with defaults filled in.

    `source` names where the data came from (a file path) for the error message, which has one
    line per problem: `<source>: <dotted key>: <what is wrong>`.
    """
    schema = load_schema(schema_name)
    validator = _Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = dict.fromkeys(f"{source}: {key}: {message}" for key, message in map(_describe, errors))
        raise ConfigError("\n".join(lines))
    return _with_defaults(copy.deepcopy(data), schema)


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a missing file or a syntax error names the file (and line)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and start is not None and (mark is None or start.line != mark.line):
            # e.g. an unclosed `[`: the parser notices lines later; name where the construct began
            problem += f" ({context} at line {start.line + 1}, column {start.column + 1})"
        raise ConfigError(f"{path}:{where}: YAML syntax error: {problem}") from None


def load_validated_yaml(path: str | Path, schema_name: str) -> dict:
    """Read a YAML file and validate it against `npu/schemas/<schema_name>.schema.yaml`."""
    return validate_mapping(read_yaml(path), schema_name, str(path))


def preset_path(kind: str, name_or_path: str | Path, config_dir: str | Path | None = None) -> Path:
    """Resolve a preset name (e.g. 'tiny-sort') to `<config_dir>/<kind>/<name>.yaml`.

    A value that already points to an existing file is used as it is.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        return candidate
    base = Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR
    path = base / kind / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (base / kind).glob("*.yaml"))
        raise ConfigError(f"unknown {kind} preset {str(name_or_path)!r}: {path} does not exist (known: {', '.join(known)})")
    return path


def merge_config(base: dict, update: dict) -> dict:
    """`update` merged into a copy of `base`, mappings key by key (as Snakemake merges a
    `--configfile` over the workflow's config and `--config KEY=VALUE` over both)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_pipeline_config(files: list[str | Path] | tuple[str | Path, ...], overrides: dict | None = None) -> dict:
    """The pipeline's configuration: `files` (config/config.yaml, or the `--configfile`s) read with
    `read_yaml` and merged in order, then `overrides` (`--config`), validated against
    npu/schemas/config.schema.yaml with defaults filled in.

    The Snakefile calls this instead of Snakemake's `configfile:` + `validate`, whose messages
    name neither the file nor the line of a YAML syntax error and print the whole schema for a
    missing key; here every problem is one line `<file>: <key>: <what is wrong>`.
    """
    if not files:
        raise ConfigError("no configuration file given (expected config/config.yaml or --configfile)")
    merged: dict = {}
    for path in files:
        data = read_yaml(path)
        if not isinstance(data, dict):
            got = "an empty file" if data is None else type(data).__name__
            raise ConfigError(f"{path}: top level: expected a mapping of keys, got {got}")
        merged = merge_config(merged, data)
    source = " + ".join(map(str, files))
    if overrides:
        merged = merge_config(merged, dict(overrides))
        source += " + --config"  # the bad value may come from either
    return validate_mapping(merged, "config", source)


# A model named `<preset>-seed<n>` is the trained model preset <preset> with training.seed = n
# (several seeds of one recipe); it has no file of its own (npu.models.presets.load_model_spec).
SEED_VARIANT = re.compile(r"^(?P<base>.+)-seed(?P<seed>0|[1-9][0-9]*)$")


def seed_variant_preset(name_or_path: str | Path, config_dir: str | Path | None = None) -> tuple[Path, int] | None:
    """(the base preset's file, the seed) when `name_or_path` - a model name, or the path
    `<dir>/<preset>-seed<n>.yaml` - names a seed variant that has no file of its own."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml"):
        if candidate.is_file():
            return None
        folder, stem = candidate.parent, candidate.stem
    else:
        folder = (Path(config_dir) if config_dir is not None else DEFAULT_CONFIG_DIR) / "models"
        stem = str(name_or_path)
        if (folder / f"{stem}.yaml").is_file():
            return None
    match = SEED_VARIANT.match(stem)
    if match is None or not (folder / f"{match['base']}.yaml").is_file():
        return None
    return folder / f"{match['base']}.yaml", int(match["seed"])


def preset_argument(kind: str, config_dir: str | Path | None = None) -> Callable[[str], str]:
    """An argparse type for `--npu` / `--model` / `--preset`: a preset name under
    `<config_dir>/<kind>/` or the path of an existing YAML file. An unknown name fails at parse
    time, naming the option and listing the known presets; the value itself is returned as
    given (the command loads and validates it)."""

    def check(text: str) -> str:
        if kind == "models" and seed_variant_preset(text, config_dir) is not None:
            return text
        candidate = Path(text)
        if candidate.suffix in (".yaml", ".yml"):
            if not candidate.is_file():
                raise argparse.ArgumentTypeError(f"{text}: no such {kind} preset file")
            return text
        try:
            preset_path(kind, text, config_dir)
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = f"{kind} preset"  # argparse names the type in its messages
    return check
