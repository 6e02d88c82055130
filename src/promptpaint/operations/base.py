"""The :class:`Operation` base class and the registry every front end reads.

An operation is one kind of edit (replace, remove, outpaint, ...). Its module holds everything
about it: its option model, its defaults, the models it needs, how it turns the selection into
edit weights, how it generates (through the shared crop-and-stitch) and how it describes itself
in the recipe. Subclasses register themselves by ``name``; the modules of this package are found
and imported on first use, so adding an operation means adding a module, nothing else.

Operation modules stay light to import (no torch, no OpenCV at module level): the CLI imports
them all to build its commands, and ``promptpaint --help`` must stay instant.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from promptpaint.errors import InvalidOptionError, UnsupportedOperationError
from promptpaint.options import DEFAULT_MODELS, EditOptions, ModelOptions, parse_options

if TYPE_CHECKING:
    from promptpaint.core.images import LoadedImage
    from promptpaint.options import Limits
    from promptpaint.pipeline.batching import Steps
    from promptpaint.pipeline.editing import EditJob

#: the model roles an edit may name (ModelOptions fields): its model flags, recipe keys and the CLI's
MODEL_ROLES = tuple(DEFAULT_MODELS)  # detector, segmenter, inpainter, remover, matting
#: recipe keys whose recorded value is what the edit actually used (resolved), not what was given
RESOLVED_KEYS = ("dilate", "feather", "box_threshold", "text_threshold", "steps", "guidance", "strength",
                 "refine_strength", "no_refine", "no_color_match", "prefill", *MODEL_ROLES, "fast", "fast_lora",
                 "deep_cache")
#: recipe keys that name a model: the name the user gave is kept (an alias stays an alias)
NAMED_MODELS = (*MODEL_ROLES, "fast_lora")
#: recipe keys recorded for the reader only (the sampler follows from the model, fast and
#: fast_lora); a recipe being read drops them
RECORDED_ONLY = ("scheduler",)


class Operation:
    """One kind of edit. Subclasses set the class attributes and write :meth:`steps`.

    The docstring's first line is the operation's summary (CLI help, HTTP docs, the page)."""

    #: the CLI command, the HTTP route ``/v1/<name>``, the recipe's ``op``
    name: ClassVar[str]
    #: its option model (an :class:`EditOptions` with ``op: Literal[name]``)
    options: ClassVar[type[EditOptions]]
    #: it edits a selection (find/box/point/mask); False: it needs none (outpaint)
    takes_selection: ClassVar[bool] = True
    #: the model role that paints: the ModelOptions field naming it ("inpainter" or "remover"), or
    #: None for an operation that generates nothing (it then loads its own models in ``steps``)
    generator: ClassVar[str | None] = "inpainter"
    #: it paints what the prompt says, so a prompt-free remover cannot do it
    paints_prompt: ClassVar[bool] = True
    #: options (of its model, or ModelOptions) it has no use for: hidden from its CLI command and from
    #: the page's schema; its option model refuses them when given
    unused_options: ClassVar[tuple[str, ...]] = ()
    #: how a diffusion model's hole is filled before it generates, when --prefill is not given
    #: (lama, telea or none; see ``EditJob.generate``)
    default_prefill: ClassVar[str] = "none"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    # ------------------------------------------------------------ what it is
    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or cls.name).strip().splitlines()[0]

    def parse(self, values: dict[str, Any], where: str = "", mask_given: bool = False) -> EditOptions:
        """Its typed options from a dict (CLI flags, HTTP options, a recipe entry); one-line errors."""
        return parse_options(self.options, {"op": self.name, **values}, where, mask_given)

    @classmethod
    def model_roles(cls) -> tuple[str, ...]:
        """The model roles (ModelOptions fields) this operation may load: its CLI model flags. An
        operation that paints with the inpainter may also pre-fill with the remover (--prefill)."""
        roles = ("detector", "segmenter") if cls.takes_selection else ()
        roles += (cls.generator,) if cls.generator else ()
        return roles + (("remover",) if cls.generator == "inpainter" else ())

    def labels(self, edit: EditOptions) -> list[str]:
        """What the selection asks the detector to find by text (``--exclude`` is added to it)."""
        return list(edit.find)

    # ------------------------------------------------------------ before any model loads
    def check(self, edit: EditOptions, image: LoadedImage, limits: Limits) -> None:
        """Cheap checks of the request against the image, before any model is looked up: the
        selection's boxes and points (an operation with more to check, e.g. an outpaint canvas
        against the limits, overrides this)."""
        if self.takes_selection and not edit.mask:
            from promptpaint.pipeline.selection import check_prompts

            check_prompts(edit, self.labels(edit) + list(edit.exclude), image.size)

    def models(self, edit: EditOptions, models: ModelOptions, mask_given: bool) -> dict[str, str]:
        """role -> model name, for every model this edit will load (preflight checks them all first)."""
        from promptpaint.pipeline.selection import models_needed

        needed: dict[str, str] = {}
        if self.takes_selection and not (mask_given or edit.mask):
            needed.update(models_needed(edit, self.labels(edit) + list(edit.exclude), models))
        if self.generator:
            needed[self.generator] = getattr(edit, self.generator) or getattr(models, self.generator)
            if edit.fast:
                needed["fast_lora"] = edit.fast_lora  # None: the generator's default one
            prefill = edit.prefill or self.default_prefill
            if prefill != "none":  # needed only if the generator is a diffusion model: preflight decides
                needed["prefill"] = prefill_model(prefill, edit, models)
        return needed

    # ------------------------------------------------------------ the edit
    def steps(self, job: EditJob) -> Steps:
        """The edit, written once as a generator of model requests (see ``pipeline.batching``):
        select, turn the selection into edit weights, generate. Returns an ``EditResult``."""
        raise NotImplementedError

    def check_generator(self, model: Any) -> None:
        """Refuse a model that cannot do this operation (a remover asked to paint a prompt)."""
        if self.paints_prompt and not model.needs_prompt:
            raise UnsupportedOperationError(f"{model.model_id} only removes; use a diffusion inpainter "
                                            f"for {self.name}")

    def describe(self, edit: EditOptions, used: dict[str, Any], seed: int) -> dict[str, Any]:
        """The recipe entry that replays this edit: the options given, then the values the edit
        actually used (resolved defaults, model ids), the op and the seed. Settings it did not use
        (a LaMa removal's steps, a --mask edit's detector) are left out."""
        given = edit.model_dump(mode="json", exclude_defaults=True)
        entry = {k: v for k, v in given.items() if k not in RESOLVED_KEYS}
        for key, value in used.items():
            entry[key] = given[key] if key in NAMED_MODELS and key in given else value
        return entry | {"op": self.name, "seed": seed}


def prefill_model(choice: str, edit: EditOptions, models: ModelOptions) -> str:
    """The remover a pre-fill choice (``lama``, ``telea``) names: the edit's or the configured
    remover when it is of that family (a local LaMa folder, say), else the alias itself."""
    from promptpaint.backends import registry

    for name in (edit.remover, models.remover):
        if name and registry.known_family(name) == choice:  # offline: an alias, a folder, a cached hub id
            return name
    return choice


# ---------------------------------------------------------------- the registry
_REGISTRY: dict[str, type[Operation]] = {}
_discovered = False
_lock = threading.Lock()


def _discover() -> None:
    """Import every module of ``promptpaint.operations`` once; each registers its operations."""
    global _discovered
    if _discovered:
        return
    with _lock:
        if not _discovered:
            import promptpaint.operations as package

            for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                if module.name != "base" and not module.name.startswith("_"):
                    importlib.import_module(f"{package.__name__}.{module.name}")
            _discovered = True


def names() -> list[str]:
    """Every operation's name, in a stable order (the built-in ones first, then alphabetical)."""
    _discover()
    first = [n for n in ("replace", "remove", "outpaint") if n in _REGISTRY]
    return first + sorted(n for n in _REGISTRY if n not in first)


def get(name: Any, where: str = "") -> Operation:
    """The operation called ``name``; a one-line error naming the choices otherwise."""
    _discover()
    if name not in _REGISTRY:
        raise InvalidOptionError(f"{where}op must be one of {', '.join(names())}, got {name!r}")
    return _REGISTRY[name]()


def all_operations() -> list[Operation]:
    return [get(name) for name in names()]


def option_fields() -> set[str]:
    """Every field any operation's options have (recipe defaults, manifest columns)."""
    return set().union(*(op.options.model_fields for op in all_operations()))


def parse_edit(values: dict[str, Any], where: str = "", mask_given: bool = False) -> EditOptions:
    """A dict with an ``op`` key -> that operation's typed options."""
    return get(values.get("op"), where).parse(values, where, mask_given)
