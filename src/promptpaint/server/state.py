"""What one server process holds: the Pipeline (models loaded once), the job queue, the image
store, and the policy on which models a request may name."""

from __future__ import annotations

import logging
from typing import Any

from promptpaint import __version__
from promptpaint.backends import registry
from promptpaint.errors import ModelLoadError, PromptPaintError
from promptpaint.options import NO_MATTING
from promptpaint.backends.registry import LORA_FAMILIES
from promptpaint.pipeline.pipeline import ROLE_FAMILIES, Pipeline
from promptpaint.server.errors import ModelNotAllowedError
from promptpaint.server.images import ImageStore
from promptpaint.server.jobs import JobQueue
from promptpaint.server.settings import ServerSettings

log = logging.getLogger(__name__)


class ServerState:
    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.pipeline = Pipeline(settings.models, limits=settings.limits)
        self.allowed = allowed_models(settings)
        self.images = ImageStore(settings.image_cache_size)
        self.jobs = JobQueue(settings.queue_size, settings.keep_jobs)
        self.warm = False

    @property
    def loaded(self) -> dict[str, str]:
        return {role: getattr(self.pipeline.models, role) for role in ROLE_FAMILIES}

    def warm_up(self) -> None:
        """Load the default models now, so the first request does not pay for it; every missing one
        is named in one error first, as every command's preflight does."""
        pipe = self.pipeline
        try:
            pipe.preflight(self.loaded)
        except ModelLoadError as error:
            if pipe.models.matting in error.missing:  # only cut-outs need it: say how to start without
                raise ModelLoadError(f"{error}; or start with --matting none (cut-outs then use the "
                                     "feathered selection)", error.missing) from None
            raise
        for role in ROLE_FAMILIES:
            log.info("loading %s %s", role, getattr(pipe.models, role))
            getattr(pipe, role)()
        self.warm = True

    def check_models(self, options: dict[str, Any]) -> None:
        """Requests may name only the loaded models and those given with --allow-model, by the name
        the server was given or by the id it resolves to (what a recipe records: ``facebook/sam-vit-base``
        for ``sam-b``), so a recipe the server wrote replays on it. A
        ``fast_lora`` must have been given with --allow-model (without one, --fast uses the
        model's own)."""
        for role, allowed in self.allowed.items():
            name = options.get(role)
            if name is None or name in allowed:
                continue
            source = _source(name)
            if source is None or source not in {_source(a) for a in allowed}:
                choices = ", ".join(allowed) or "none"
                raise ModelNotAllowedError(f"{role} {name!r} is not allowed on this server (allowed: {choices}); "
                                           "start it with --allow-model to add one")

    def check_prefill(self, operation, edit, mask_given: bool) -> None:
        """A diffusion edit's pre-fill loads a remover too: LaMa only where the server allows it
        (Telea is OpenCV: nothing to load)."""
        needed = operation.models(edit, self.pipeline.models, mask_given)
        name = needed.get("prefill")
        if name and name != "telea" and name not in self.allowed["remover"] and self.pipeline.prefills(needed):
            choices = ", ".join(self.allowed["remover"])
            raise ModelNotAllowedError(f"prefill {edit.prefill or operation.default_prefill} needs the remover "
                                       f"{name!r}, which is not allowed on this server (allowed: {choices}); "
                                       "use prefill telea or none, or start it with --allow-model")

    def models_json(self) -> dict[str, Any]:
        return {"loaded": self.loaded, "allowed": self.allowed, "warm": self.warm,
                "device": self.pipeline.device if self.warm else self.pipeline.models.device,
                "dtype": self.pipeline.models.dtype}

    def health_json(self) -> dict[str, Any]:
        status = "ok" if self.jobs.alive else "worker stopped"
        return {"status": status, "version": __version__, "warm": self.warm, "queue": self.jobs.stats()}

    def close(self) -> None:
        self.jobs.close()


def _source(name: str) -> str | None:
    """The hub id or folder a model name resolves to (None if it resolves to nothing)."""
    try:
        return registry.resolve(name).source
    except PromptPaintError:
        return None


def allowed_models(settings: ServerSettings) -> dict[str, list[str]]:
    """role -> names a request may use: the loaded default first, then every --allow-model of a
    fitting family. Names are resolved (never loaded) here, so a typo fails at start."""
    allowed: dict[str, list[str]] = {role: [getattr(settings.models, role)] for role in ROLE_FAMILIES}
    if NO_MATTING not in allowed["matting"]:
        allowed["matting"].append(NO_MATTING)  # loads nothing
    allowed["fast_lora"] = []
    for name in settings.allow_models:
        family = registry.resolve(name, role="allowed model").family
        roles = [role for role, families in {**ROLE_FAMILIES, "fast_lora": LORA_FAMILIES}.items() if family in families]
        for role in roles:
            if name not in allowed[role]:
                allowed[role].append(name)
    return allowed
