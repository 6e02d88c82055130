"""The one output writer (``pipeline/output.py``): variant names, the overwrite rule, and what
travels with the pixels (alpha, ICC profile, each variant's own replayable recipe)."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from promptpaint.core.images import load_image, read_png_metadata
from promptpaint.core.types import EditResult
from promptpaint.errors import InvalidOptionError, OutputExistsError
from promptpaint.pipeline.output import (check_outputs, default_output, encode_variant, variant_paths,
                                         write_result)


@pytest.fixture(scope="module")
def icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


@pytest.fixture()
def result(icc) -> EditResult:
    """Two 6x4 variants with alpha and a colour profile, as an edit of a profiled RGBA photo returns."""
    variants = (np.full((4, 6, 3), 10, np.uint8), np.full((4, 6, 3), 20, np.uint8))
    mask = np.zeros((4, 6), bool)
    mask[1:3, 2:4] = True
    return EditResult(image=variants[0], mask=mask, variants=variants, alpha=np.full((4, 6), 128, np.uint8),
                      recipe={"op": "replace", "box": [[1, 1, 4, 3]], "prompt": "x", "seed": 7, "variants": 2},
                      icc_profile=icc)


@pytest.mark.parametrize("path, count, expected", [
    ("a/b.png", 1, ["a/b.png"]),
    ("a/b.png", 3, ["a/b_0.png", "a/b_1.png", "a/b_2.png"]),
    (Path("out.jpg"), 2, [Path("out_0.jpg"), Path("out_1.jpg")]),
    (PurePosixPath("x/y.webp"), 2, [PurePosixPath("x/y_0.webp"), PurePosixPath("x/y_1.webp")]),
])
def test_variant_paths_keep_the_type_given(path, count, expected):
    assert variant_paths(path, count) == expected


def test_default_output_is_beside_the_input():
    assert default_output(Path("shoot/cat.jpg"), "remove") == Path("shoot/cat.remove.png")


def test_the_overwrite_rule(tmp_path):
    source, existing = tmp_path / "in.png", tmp_path / "old.png"
    source.write_bytes(b"input")
    existing.write_bytes(b"old")
    check_outputs([tmp_path / "new.png", None], inputs=[source])  # nothing to refuse
    with pytest.raises(OutputExistsError, match="input"):
        check_outputs([source], inputs=[source], overwrite=True)  # never the input, even with --overwrite
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_outputs([existing], inputs=[source])
    check_outputs([existing], inputs=[source], overwrite=True)
    with pytest.raises(InvalidOptionError, match="cannot tell the output format"):
        check_outputs([tmp_path / "out.gif"])
    with pytest.raises(InvalidOptionError, match="masks are written as PNG"):
        check_outputs([], masks=[tmp_path / "mask.jpg"])
    assert source.read_bytes() == b"input" and existing.read_bytes() == b"old"


def test_write_result_writes_every_variant_with_its_recipe_alpha_and_profile(tmp_path, result, icc):
    paths = write_result(result, tmp_path / "out.png", mask_path=tmp_path / "mask.png")
    assert paths == [tmp_path / "out_0.png", tmp_path / "out_1.png"]
    for i, path in enumerate(paths):
        loaded = load_image(path)
        assert np.array_equal(loaded.rgb, result.variants[i]) and np.array_equal(loaded.alpha, result.alpha)
        assert loaded.icc_profile == icc
        recipe = json.loads(read_png_metadata(path)["promptpaint"])
        assert recipe["edits"][0]["seed"] == 7 + i and "variants" not in recipe["edits"][0]
        assert path.read_bytes() == encode_variant(result, i)  # the server's bytes are the CLI's
    assert np.array_equal(np.array(Image.open(tmp_path / "mask.png")) > 0, result.mask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mask.png", "out_0.png", "out_1.png"]  # no temporaries


def test_write_result_checks_every_path_before_writing_any(tmp_path, result):
    (tmp_path / "out_1.png").write_bytes(b"keep me")
    with pytest.raises(OutputExistsError):
        write_result(result, tmp_path / "out.png")
    assert not (tmp_path / "out_0.png").exists() and (tmp_path / "out_1.png").read_bytes() == b"keep me"


def test_jpeg_keeps_the_profile_and_drops_alpha(tmp_path, result, icc):
    (path,) = write_result(EditResult(result.image, result.mask, result.variants[:1], result.recipe,
                                      alpha=result.alpha, icc_profile=icc), tmp_path / "out.jpg")
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.info["icc_profile"] == icc
