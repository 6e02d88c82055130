"""Server settings: what ``promptpaint serve`` was started with. Light: no FastAPI, no torch."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field

from promptpaint.options import Limits, ModelOptions

MB = 1024 * 1024


class ServerSettings(BaseModel):
    """Everything the app factory needs; ``promptpaint serve`` fills it from its flags."""

    model_config = ConfigDict(extra="forbid")

    models: ModelOptions = Field(default_factory=ModelOptions, description="the models loaded at start")
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    token: str | None = Field(None, description="bearer token every /v1 call must carry (health excepted)")
    allow_models: list[str] = Field(default_factory=list,
                                    description="extra model names requests may ask for, beside the loaded ones")
    max_upload_mb: float = Field(20, gt=0, description="largest request body, in MiB")
    max_pixels: int | None = Field(None, gt=0, description="largest image (and outpaint canvas) in pixels")
    queue_size: int = Field(8, ge=0, description="jobs that may wait behind the running one before 503")
    image_cache_size: int = Field(16, ge=1, description="uploaded images kept for reuse by image_id")
    keep_jobs: int = Field(32, ge=1, description="finished jobs whose results stay fetchable")
    preload: bool = Field(True, description="load the default models at start (the server answers warm)")

    @property
    def limits(self) -> Limits:
        """The limits the server's Pipeline applies to every image, mask and outpaint canvas; no
        option of a request may name a file on the server."""
        return Limits(max_pixels=self.max_pixels, read_files=False)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * MB)

    @property
    def is_local_only(self) -> bool:
        """True when bound to a loopback address (the page and API are not reachable from outside)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False
