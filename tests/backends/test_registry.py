"""Resolving names (alias, hub id, folder) and the preflight that names every missing model at once."""

from __future__ import annotations

import json

import pytest

from promptpaint.backends import registry
from promptpaint.backends.registry import folder_on_disk, require, resolve
from promptpaint.errors import InvalidOptionError, ModelLoadError

DEFAULT_NEEDS = [("detector", "gdino-tiny"), ("segmenter", "sam-b"), ("inpainter", "sd15")]


def test_aliases_resolve_from_the_catalogue():
    ref = resolve("sd15", registry.INPAINTER_FAMILIES, "inpainter")
    assert (ref.source, ref.family, ref.is_local) == ("stable-diffusion-v1-5/stable-diffusion-inpainting",
                                                      "sd-inpaint", False)
    assert ref.entry.licence.name == "CreativeML OpenRAIL-M"
    assert resolve("telea").source == "opencv:telea" and not resolve("telea").downloads


def test_hub_ids_take_their_family_from_cached_files_not_from_their_names(fake_hub):
    """Today's main: 'XLabs-AI/flux-fill-test' became SDXL ("xl" in the name) and
    'Sanster/lama-inpaint' became SD ("inpaint")."""
    fake_hub.add("XLabs-AI/flux-fill-test", {"model_index.json": json.dumps({"_class_name": "FluxFillPipeline"})})
    fake_hub.add("Sanster/lama-inpaint", {"big-lama.onnx": b"onnx"})
    assert resolve("XLabs-AI/flux-fill-test").family == "flux-fill"
    assert resolve("Sanster/lama-inpaint", registry.REMOVER_FAMILIES, "remover").family == "lama"


def test_a_hub_id_not_in_the_cache_fails_offline_with_the_fetch_command(fake_hub):
    with pytest.raises(ModelLoadError, match=r"`promptpaint models fetch someone/new-sam`"):
        resolve("someone/new-sam", role="segmenter")


def test_a_hub_id_reads_its_config_from_the_hub_when_online(fake_hub):
    fake_hub.listings["someone/tiny-owl"] = {"config.json": 10, "model.safetensors": 100}
    fake_hub.serve()
    # the fake hub's config.json stub names no family: the message says what it is
    with pytest.raises(ModelLoadError, match="'someone/tiny-owl' is a stub, which promptpaint does not support"):
        resolve("someone/tiny-owl")
    assert fake_hub.downloads == [("someone/tiny-owl", "config.json")]  # only the small file


def test_wrong_kind_unknown_alias_and_missing_folder(tiny):
    with pytest.raises(ModelLoadError, match="is a sam model and cannot be used as the inpainter"):
        resolve(str(tiny["sam"]), registry.INPAINTER_FAMILIES, "inpainter")
    with pytest.raises(InvalidOptionError) as typo:  # #10 item 9: exit 2, and only this role's aliases
        resolve("gdino-tinyy", registry.DETECTOR_FAMILIES, "detector")
    assert str(typo.value) == ("unknown detector 'gdino-tinyy': did you mean 'gdino-tiny'? detector aliases are "
                               "gdino-tiny, gdino-base, owlv2, sam3 (or give a hub id owner/name or a folder)")
    with pytest.raises(ModelLoadError, match="nor an existing folder") as raised:
        resolve("./models/my-sam", role="segmenter")
    assert raised.value.missing == ["./models/my-sam"]


def test_local_folders_are_always_on_disk(tiny):
    ref = resolve(str(tiny["sd-inpaint"]), role="inpainter")
    assert ref.is_local and folder_on_disk(ref) == tiny["sd-inpaint"]


def test_preflight_names_all_three_missing_models_in_one_line(fake_hub):
    with pytest.raises(ModelLoadError) as raised:
        require(DEFAULT_NEEDS + [("remover", "telea")])
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("3 models are not on this machine: detector gdino-tiny "
                              "(IDEA-Research/grounding-dino-tiny); segmenter sam-b (facebook/sam-vit-base); "
                              "inpainter sd15 (stable-diffusion-v1-5/stable-diffusion-inpainting)")
    assert "`promptpaint models fetch gdino-tiny sam-b sd15` (5.3 GB)" in message
    assert "HF_HUB_OFFLINE" in message and raised.value.exit_code == 4
    assert raised.value.missing == ["gdino-tiny", "sam-b", "sd15"]


def test_preflight_mixes_missing_folders_hub_ids_and_gated_models(fake_hub, tiny):
    with pytest.raises(ModelLoadError) as raised:
        require([("detector", str(tiny["grounding-dino"])), ("segmenter", "/nowhere/sam"),
                 ("inpainter", "flux-fill"), ("remover", "someone/lama-copy")])
    message = str(raised.value)
    assert message.startswith("3 models are not on this machine: segmenter /nowhere/sam (neither a known alias, "
                              "a hub id (owner/name) nor an existing folder); "
                              "inpainter flux-fill (black-forest-labs/FLUX.1-Fill-dev, gated); remover someone/lama-copy")
    assert "`promptpaint models fetch flux-fill someone/lama-copy`" in message
    assert "accept the licence on huggingface.co and log in" in message


def test_preflight_passes_when_the_cache_holds_every_model(fake_hub, tiny):
    import shutil

    for alias, kit in (("gdino-tiny", "grounding-dino"), ("sam-b", "sam"), ("sd15", "sd-inpaint")):
        repo = registry.ALIASES[alias][0]
        snapshot = fake_hub.add(repo, {})
        shutil.copytree(tiny[kit], snapshot, dirs_exist_ok=True)
    refs = require(DEFAULT_NEEDS)
    assert [r.name for r in refs] == ["gdino-tiny", "sam-b", "sd15"]
    assert all(folder_on_disk(r) is not None for r in refs)


def test_a_partial_download_counts_as_missing(fake_hub, tiny):
    import shutil

    snapshot = fake_hub.add("facebook/sam-vit-base", {})
    shutil.copytree(tiny["sam"], snapshot, dirs_exist_ok=True)
    (snapshot / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="a model is not on this machine: segmenter sam-b"):
        require([("segmenter", "sam-b")])


def test_preflight_downloads_exactly_what_is_missing_when_online(fake_hub):
    fake_hub.serve()
    refs = require([("segmenter", "sam-b"), ("remover", "lama")])
    assert sorted(fake_hub.downloads) == [("facebook/sam-vit-base", "config.json"),
                                          ("facebook/sam-vit-base", "model.safetensors"),
                                          ("facebook/sam-vit-base", "preprocessor_config.json"),
                                          ("g-ronimo/lama", "lama.onnx")]
    assert [r.name for r in refs] == ["sam-b", "lama"]


def test_preflight_reports_every_download_that_fails(fake_hub, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise ConnectionError("no route to host")

    calls = []
    fake_hub.serve()
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda *a, **k: calls.append(a) or no_network())
    with pytest.raises(ModelLoadError, match=r"^2 models are not on this machine: segmenter sam-b "
                                                r"\(facebook/sam-vit-base, hub unreachable\); inpainter sd15 .*"
                                                r"`promptpaint models fetch sam-b sd15`"):
        require([("segmenter", "sam-b"), ("inpainter", "sd15")])
    assert len(calls) == 1  # the hub was tried once, not once per model


def test_a_hub_id_that_does_not_exist_fails_at_once(fake_hub):
    fake_hub.serve()
    with pytest.raises(ModelLoadError, match="'someone/gone' does not exist on the Hugging Face hub"):
        require([("segmenter", "someone/gone"), ("inpainter", "sd15")])
