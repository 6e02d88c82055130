"""Recipes: several edits applied in order, as YAML or JSON, and embedded in output PNGs.

``{"edits": [{"op": "replace", "keep": "dog", "prompt": "a beach"}, {"op": "outpaint", "aspect": "16:9"}],
"seed": 7, "steps": 20}`` -- edit keys are the CLI option names (dashes as underscores); other
top-level keys are defaults for every edit, or pipeline settings (device, dtype, offload, compile).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptpaint import operations
from promptpaint.operations.base import RECORDED_ONLY
from promptpaint.errors import InvalidOptionError
from promptpaint.options import EditOptions, ModelOptions

#: the PNG text chunk holding the recipe of an output
METADATA_KEY = "promptpaint"
PIPELINE_KEYS = {"device", "dtype", "offload", "compile"}
#: what an edit's recipe entry reports for the reader, not options: how its phrases were read
#: and which found nothing. A replay reads the phrases again, so these are dropped on parsing.
REPORT_KEYS = ("read", "missing")


@dataclass
class Recipe:
    edits: list[EditOptions]
    pipeline: dict[str, Any] = field(default_factory=dict)  # ModelOptions fields given at top level

    def to_dict(self) -> dict[str, Any]:
        return {**self.pipeline, "edits": [e.model_dump(mode="json", exclude_defaults=True) | {"op": e.op}
                                           for e in self.edits]}


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a one-line JSON recipe longer than a file name may be (ENAMETOOLONG)
        return False


def _read(source: Any) -> dict:
    if isinstance(source, dict):
        return source
    path = Path(source) if isinstance(source, (str, Path)) and "\n" not in str(source) else None
    if path is not None and _is_file(path):
        if path.suffix.lower() == ".png":
            return recipe_from_image(path)
        text = path.read_text(encoding="utf-8")
    elif path is not None and path.suffix.lower() in (".json", ".yaml", ".yml", ".png"):
        raise InvalidOptionError(f"recipe file not found: {path}")
    else:
        text = str(source)
    try:
        import yaml

        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except Exception as error:  # noqa: BLE001
        raise InvalidOptionError(f"recipe is not valid YAML/JSON: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InvalidOptionError("a recipe must be a mapping with an 'edits' list")
    return data


def load_recipe(source: Any, overrides: dict[str, Any] | None = None) -> Recipe:
    """Parse a recipe (path, YAML/JSON text, dict, a PNG made by promptpaint, or a Recipe).

    ``overrides`` (e.g. a batch manifest row's fields) beat the recipe's defaults and edits."""
    if isinstance(source, Recipe) and not overrides:
        return source
    data = dict(source.to_dict() if isinstance(source, Recipe) else _read(source))
    edits = data.pop("edits", None)
    data.pop(METADATA_KEY, None)
    data.pop("versions", None)
    if not isinstance(edits, list) or not edits:
        raise InvalidOptionError("a recipe needs a non-empty 'edits' list")
    pipeline = {k: data.pop(k) for k in list(data) if k in PIPELINE_KEYS}
    model_keys = set(ModelOptions.model_fields)
    defaults = data
    unknown = sorted(set(defaults) - operations.option_fields() - model_keys)
    if unknown:
        raise InvalidOptionError(f"recipe: unknown top-level key {unknown[0]!r}")
    overrides = overrides or {}
    parsed = []
    for i, raw in enumerate(edits, 1):
        if not isinstance(raw, dict):
            raise InvalidOptionError(f"recipe edit {i}: must be a mapping with an 'op'")
        where = f"recipe edit {i} ({raw.get('op')}): "
        operation = operations.get(raw.get("op"), where)
        raw = {k: v for k, v in raw.items() if k not in RECORDED_ONLY}
        fields = operation.options.model_fields
        merged = {k: v for k, v in {**defaults, **overrides}.items() if k in fields}
        merged.update({k: v for k, v in raw.items() if k not in REPORT_KEYS})
        merged.update({k: v for k, v in overrides.items() if k in fields})
        parsed.append(operation.parse(merged, where=where))
    return Recipe(parsed, pipeline)


def missing_phrases(recipe: dict[str, Any]) -> list[str]:
    """The phrases that found nothing in any edit of a result's recipe (one entry, or ``{"edits": [...]}``)."""
    entries = recipe["edits"] if "edits" in recipe else [recipe]
    return list(dict.fromkeys(text for entry in entries for text in entry.get("missing", ())))


def variant_recipe(recipe: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """The recipe that replays variant ``index`` of a result alone: ``{"edits": [...]}`` whose
    last edit has seed + index and no ``variants`` (variant i is generated from seed + i).
    ``recipe`` is a result's recipe: one edit entry, or ``{"edits": [...]}`` from ``run``."""
    import copy

    meta = copy.deepcopy({"edits": recipe["edits"]} if "edits" in recipe else {"edits": [recipe]})
    last = meta["edits"][-1]
    last["seed"] = int(last.get("seed", 0)) + index
    last.pop("variants", None)
    return meta


def recipe_metadata(recipe: dict[str, Any]) -> dict[str, str]:
    """PNG text chunks for an output: the recipe plus the versions that made it."""
    from promptpaint import __version__

    versions = {"promptpaint": __version__}
    for name in ("torch", "transformers", "diffusers", "onnxruntime"):
        try:
            from importlib.metadata import version

            versions[name] = version(name)
        except Exception:  # noqa: BLE001
            pass
    return {METADATA_KEY: json.dumps({**recipe, "versions": versions}, sort_keys=True)}


def recipe_from_image(path: Any) -> dict:
    """The recipe embedded in a PNG written by promptpaint."""
    from promptpaint.core.images import read_png_metadata

    text = read_png_metadata(path).get(METADATA_KEY)
    if not text:
        raise InvalidOptionError(f"{path} holds no promptpaint recipe (was it written by promptpaint as PNG?)")
    return json.loads(text)
