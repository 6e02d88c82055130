"""The catalogue's facts: every alias is complete, and licences/gating are the ones the cards state."""

from __future__ import annotations

import pytest

from promptpaint.backends.catalog import CATALOGUE, aliases_for
from promptpaint.backends.families import FAMILIES, ROLES
from promptpaint.options import DEFAULT_MODELS


def test_every_entry_is_complete():
    for alias, entry in CATALOGUE.items():
        assert entry.alias == alias and entry.family in FAMILIES
        assert set(entry.roles) <= set(ROLES) and entry.roles
        assert entry.source and entry.licence.url.startswith("https://")
        assert entry.licence.commercial in ("yes", "no", "yes, with use restrictions")
        assert (entry.hub_id is None) == (entry.layout == "builtin")
        assert entry.size > 0 or entry.layout == "builtin"
        assert entry.size_fp16 is None or entry.size_fp16 < entry.size


def test_defaults_are_in_the_catalogue_for_their_role():
    for role, alias in DEFAULT_MODELS.items():
        assert alias in aliases_for(role)


@pytest.mark.parametrize("alias, licence, commercial, gated", [
    ("flux-fill", "FLUX.1 [dev] Non-Commercial License", "no", True),
    ("sd15", "CreativeML OpenRAIL-M", "yes, with use restrictions", False),
    ("sdxl", "CreativeML OpenRAIL++-M", "yes, with use restrictions", False),
    ("sam-b", "Apache-2.0", "yes", False),
    ("sam2-l", "Apache-2.0", "yes", False),
    ("sam3", "SAM License", "yes, with use restrictions", True),
    ("gdino-tiny", "Apache-2.0", "yes", False),
    ("owlv2", "Apache-2.0", "yes", False),
    ("lama", "Apache-2.0", "yes", False),
])
def test_licences_and_gating(alias, licence, commercial, gated):
    entry = CATALOGUE[alias]
    assert (entry.licence.name, entry.licence.commercial, entry.gated) == (licence, commercial, gated)


def test_roles_come_from_the_family():
    assert CATALOGUE["sam3"].roles == ("detector", "segmenter")
    assert CATALOGUE["sd15"].roles == ("inpainter", "remover")
    assert aliases_for("remover") == ["sd15", "sdxl", "flux-fill", "lama", "telea"]
    assert aliases_for("matting") == ["vitmatte"]
    assert aliases_for("lora") == ["lcm-sd15", "lcm-sdxl", "tcd-sdxl", "flux-turbo"]  # fast mode's
    assert aliases_for("preview-vae") == ["taesd", "taesdxl", "taef1"]  # live previews
