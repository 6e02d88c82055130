"""operations.cutout, and replace --keep --matte: the alpha's exact regions, the colours, the
background against a hand computation, crop, recipes, preflight; then the same operation through the
CLI, POST /v1/cutout and batch."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from promptpaint.core import alpha as A
from promptpaint.core import masks as M
from promptpaint.core.images import LoadedImage, read_png_metadata
from promptpaint.errors import InvalidOptionError, ModelLoadError
from promptpaint.operations.cutout import CutoutEdit
from promptpaint.options import Limits
from promptpaint.pipeline.pipeline import Pipeline

BAND = 5  # the default band for the 451 x 300 cat: 1% of the longer side


def subject(shape: tuple[int, int]) -> np.ndarray:
    """A hand-made selection: a disc and a rectangle, the cat's head and body."""
    ys, xs = np.mgrid[:shape[0], :shape[1]]
    mask = (xs - 230) ** 2 + (ys - 130) ** 2 <= 70 ** 2
    mask[170:260, 120:330] = True
    return mask


@pytest.fixture(scope="module")
def mask(cat_rgb) -> np.ndarray:
    return subject(cat_rgb.shape[:2])


@pytest.fixture(scope="module")
def cut(tiny_pipeline, cat_rgb, mask):
    """The cat cut out with the tiny ViTMatte and every default."""
    return tiny_pipeline.cutout(cat_rgb, mask=mask)


# ---------------------------------------------------------------- the alpha and the colours
def test_alpha_is_exact_off_the_band(cut, cat_rgb, mask):
    assert cut.image.shape == cat_rgb.shape and cut.alpha.shape == mask.shape and cut.alpha.dtype == np.uint8
    band = M.dilate(mask, BAND) & ~M.erode(mask, BAND)
    assert (cut.alpha[~M.dilate(mask, BAND)] == 0).all()
    assert (cut.alpha[M.erode(mask, BAND)] == 255).all()
    soft = (cut.alpha > 0) & (cut.alpha < 255)
    assert soft.sum() > 0.5 * band.sum() and not (soft & ~band).any()


def test_alpha_is_the_matting_models_in_the_band(cut, tiny_pipeline, cat_rgb, mask):
    trimap = A.make_trimap(mask, BAND, BAND)
    predicted = tiny_pipeline.matting().matte(cat_rgb, trimap)
    assert np.array_equal(cut.alpha, A.assemble_alpha(trimap, predicted))


def test_rgb_is_the_photo_wherever_it_is_opaque_or_off_the_band(cut, cat_rgb, mask):
    solid = cut.alpha == 255
    assert np.array_equal(cut.image[solid], cat_rgb[solid])
    outside = ~(M.dilate(mask, BAND) & ~M.erode(mask, BAND))
    assert np.array_equal(cut.image[outside], cat_rgb[outside])  # transparent pixels keep their colour too
    see_through = (cut.alpha > 0) & (cut.alpha < 255)
    assert (cut.image[see_through] != cat_rgb[see_through]).any(), "the band's colours are re-estimated"


def test_mask_says_what_may_differ_and_the_recipe_what_was_used(cut, tiny_pipeline):
    assert np.array_equal(cut.mask, cut.alpha < 255)
    assert cut.recipe["op"] == "cutout"
    assert (cut.recipe["dilate"], cut.recipe["feather"]) == (0, BAND)  # resolved, recorded
    assert cut.recipe["matting"] == str(tiny_pipeline.models.matting)
    assert "inpainter" not in cut.recipe and "steps" not in cut.recipe


def test_feather_sets_the_band(tiny_pipeline, cat_rgb, mask):
    result = tiny_pipeline.cutout(cat_rgb, mask=mask, feather=9, matting="none")
    assert (result.alpha[~M.dilate(mask, 9)] == 0).all() and (result.alpha[M.erode(mask, 9)] == 255).all()
    assert result.recipe["feather"] == 9


def test_matting_none_is_the_feathered_mask_and_loads_no_model(tiny, cat_rgb, mask):
    pipe = Pipeline(matting="vitmatte", device="cpu")  # not downloaded: loading it would fail
    result = pipe.cutout(cat_rgb, mask=mask, matting="none")
    trimap = A.make_trimap(mask, BAND, BAND)
    assert np.array_equal(result.alpha, A.assemble_alpha(trimap, A.soft_edge(mask, BAND, BAND)))
    assert result.recipe["matting"] == "none"
    assert np.array_equal(Pipeline(matting="none", device="cpu").cutout(cat_rgb, mask=mask).alpha, result.alpha)


def test_a_transparent_photo_stays_transparent(tiny_pipeline, cat_rgb, mask):
    veil = np.full(mask.shape, 255, np.uint8)
    veil[:, :230] = 128
    photo = LoadedImage(rgb=cat_rgb, alpha=veil, source=None, format="PNG", icc_profile=None)
    result = tiny_pipeline.cutout(photo, mask=mask, matting="none")
    core = M.erode(mask, BAND)
    assert (result.alpha[core & (veil == 128)] == 128).all() and (result.alpha[core & (veil == 255)] == 255).all()


# ---------------------------------------------------------------- background, crop
def test_background_colour_by_hand(tiny_pipeline, cut, cat_rgb, mask):
    white = tiny_pipeline.cutout(cat_rgb, mask=mask, background="#f0e0d0")
    assert white.alpha is None and white.image.shape == cat_rgb.shape
    a = cut.alpha.astype(np.int64)[..., None]
    expected = (cut.image.astype(np.int64) * a + np.array([240, 224, 208]) * (255 - a) + 127) // 255
    assert np.array_equal(white.image, expected.astype(np.uint8))
    assert (white.image[cut.alpha == 0] == [240, 224, 208]).all()
    assert np.array_equal(white.image[cut.alpha == 255], cat_rgb[cut.alpha == 255])


def test_background_picture_covers_the_photo(tiny_pipeline, cut, cat_rgb, mask, tmp_path):
    from promptpaint.core.compose import composite, cover

    gradient = np.zeros((100, 400, 3), np.uint8)
    gradient[..., 0] = np.linspace(0, 255, 400, dtype=np.uint8)
    gradient[..., 2] = 90
    Image.fromarray(gradient).save(tmp_path / "back.png")
    result = tiny_pipeline.cutout(cat_rgb, mask=mask, background=str(tmp_path / "back.png"))
    back = cover(gradient, (cat_rgb.shape[1], cat_rgb.shape[0]))
    assert np.array_equal(result.image, composite(cut.image, cut.alpha, back))
    assert result.recipe["background"] == str(tmp_path / "back.png")


def test_crop_trims_to_the_subject_with_padding(tiny_pipeline, cut, cat_rgb, mask):
    result = tiny_pipeline.cutout(cat_rgb, mask=mask, crop=12)
    ys, xs = np.nonzero(cut.alpha)
    x0, y0 = max(0, xs.min() - 12), max(0, ys.min() - 12)
    x1, y1 = min(cat_rgb.shape[1], xs.max() + 13), min(cat_rgb.shape[0], ys.max() + 13)
    assert result.image.shape == (y1 - y0, x1 - x0, 3)
    assert np.array_equal(result.alpha, cut.alpha[y0:y1, x0:x1])
    assert np.array_equal(result.image, cut.image[y0:y1, x0:x1])
    assert result.info["offset"] == [-x0, -y0] and result.mask.shape == result.alpha.shape


def test_a_recipe_replays_a_cutout_exactly(tiny_pipeline, cat_rgb):
    first = tiny_pipeline.cutout(cat_rgb, box="120,40,330,260", crop=4, background="white")
    again = tiny_pipeline.run(cat_rgb, {"edits": [first.recipe]})
    assert np.array_equal(again.image, first.image)
    # a cutout after another edit: the effective mask follows the crop onto the smaller canvas
    two = tiny_pipeline.run(cat_rgb, {"edits": [{"op": "remove", "box": "10,10,60,60", "remover": "telea"},
                                                {"op": "cutout", "box": "120,40,330,260", "crop": 4}]})
    assert two.mask.shape == two.image.shape[:2] == first.image.shape[:2]


# ---------------------------------------------------------------- options and checks, before any model
@pytest.mark.parametrize(("values", "message"), [
    ({}, "cutout needs --find, --box, --point or --mask"),
    ({"box": "1,1,9,9", "prompt": "a cat"}, "cutout paints nothing, so --prompt does not apply"),
    ({"box": "1,1,9,9", "steps": 4}, "--steps does not apply"),
    ({"box": "1,1,9,9", "variants": 2}, "--variants does not apply"),
    ({"box": "1,1,9,9", "crop": -1}, "--crop: Input should be greater than or equal to 0"),
])
def test_usage_errors_are_one_line(values, message):
    from promptpaint.operations import parse_edit

    with pytest.raises(InvalidOptionError, match=message):
        parse_edit({"op": "cutout", **values})


def test_a_background_file_is_refused_where_files_may_not_be_named(cat_rgb, tmp_path):
    Image.fromarray(cat_rgb).save(tmp_path / "back.png")
    served = Pipeline(device="cpu", limits=Limits(read_files=False))
    for value in (str(tmp_path / "back.png"), "/etc/passwd"):  # the same answer: nothing is learnt
        edit = CutoutEdit(box=["1,1,9,9"], background=value)
        with pytest.raises(InvalidOptionError, match=r"is not a colour .*; files cannot be named here$"):
            served.check(edit, cat_rgb)
    served.check(CutoutEdit(box=["1,1,9,9"], background="white"), cat_rgb)
    with pytest.raises(InvalidOptionError, match="neither a colour .* nor an image file"):
        Pipeline(device="cpu").check(CutoutEdit(box=["1,1,9,9"], background=str(tmp_path / "no.png")), cat_rgb)


def test_preflight_finds_a_missing_matting_model_before_loading_anything(tiny, cat_rgb, monkeypatch):
    pipe = Pipeline(segmenter=str(tiny["sam"]), matting="vitmatte", device="cpu")
    monkeypatch.setattr(Pipeline, "segmenter", lambda *a: pytest.fail("the segmenter loaded before preflight"))
    with pytest.raises(ModelLoadError, match="hustvl/vitmatte-small-composition-1k"):
        pipe.cutout(cat_rgb, box="120,40,330,260")


# ---------------------------------------------------------------- replace --keep --matte
class SolidInpainter:
    """An oracle inpainter: paints every crop one colour, so the composite can be computed by hand."""

    model_id, family = "solid", "solid"
    working_size, multiple, upscale, batches, min_context = 64, 8, False, False, 0
    needs_prompt, takes_negative_prompt = True, False
    default_steps, default_guidance, default_strength = 1, 1.0, 1.0
    scheduler, lora, has_fast_mode, shows_previews = None, None, False, False
    colour = (20, 60, 250)

    def inpaint(self, images, mask, **_):
        return [np.broadcast_to(np.uint8(self.colour), image.shape).copy() for image in images]


def test_keep_matte_puts_the_matted_subject_over_the_new_background(tiny_pipeline, cat_rgb, monkeypatch):
    from promptpaint.core.compose import composite

    monkeypatch.setattr(tiny_pipeline, "inpainter", lambda name=None: SolidInpainter())
    result = tiny_pipeline.replace(cat_rgb, keep="cat", prompt="a beach", matte=True, seed=1,
                                   box_threshold=0, text_threshold=0)
    kept = result.segmentation.mask
    trimap = A.make_trimap(kept, BAND, BAND)
    alpha = A.assemble_alpha(trimap, tiny_pipeline.matting().matte(cat_rgb, trimap))
    colours = A.recolour_band(cat_rgb, alpha, trimap)
    assert np.array_equal(result.image, composite(colours, alpha, SolidInpainter.colour))
    assert np.array_equal(result.image[alpha == 255], cat_rgb[alpha == 255])  # the subject's core: untouched
    assert result.recipe["matte"] is True and result.recipe["matting"] == str(tiny_pipeline.models.matting)
    assert np.array_equal(result.mask, M.dilate(alpha < 255, 3))  # keep's default feather: 3 px


def test_matte_goes_with_keep():
    from promptpaint.operations import parse_edit

    with pytest.raises(InvalidOptionError, match="--matte goes with --keep"):
        parse_edit({"op": "replace", "find": "cat", "prompt": "a dog", "matte": True})


# ---------------------------------------------------------------- front ends
def models_args(tiny) -> list[str]:
    return ["--segmenter", str(tiny["sam"]), "--matting", str(tiny["vitmatte"]), "--device", "cpu"]


def test_cli_writes_an_rgba_png_of_the_photos_size(tiny, cat_png, cat_rgb, tmp_path):
    from click.testing import CliRunner

    from promptpaint.cli.app import main

    out = tmp_path / "cut.png"
    done = CliRunner().invoke(main, ["cutout", str(cat_png), "--box", "120,40,330,260", *models_args(tiny),
                                     "-o", str(out)])
    assert done.exit_code == 0, done.output
    written = Image.open(out)
    assert written.mode == "RGBA" and written.size == (cat_rgb.shape[1], cat_rgb.shape[0])
    recipe = json.loads(read_png_metadata(out)["promptpaint"])["edits"][0]
    assert recipe["op"] == "cutout" and recipe["matting"] == str(tiny["vitmatte"])
    mask_png, cropped = tmp_path / "mask.png", tmp_path / "crop.png"
    Image.fromarray(subject(cat_rgb.shape[:2]).astype(np.uint8) * 255).save(mask_png)
    done = CliRunner().invoke(main, ["cutout", str(cat_png), "--mask", str(mask_png), "--crop",
                                     *models_args(tiny), "-o", str(cropped)])  # --crop without a value
    assert done.exit_code == 0, done.output
    assert Image.open(cropped).size == (210 + 2 * BAND, 200 + 2 * BAND)  # the subject's box and its band
    refused = CliRunner().invoke(main, ["cutout", str(cat_png), "--box", "1,1,9,9", "--steps", "3",
                                        "-o", str(tmp_path / "no.png")])
    assert refused.exit_code == 2 and "no such option '--steps'" in refused.output.lower()


def test_http_cutout_png_json_and_a_background_file_refused(tiny, cat_rgb):
    from fastapi.testclient import TestClient

    from promptpaint.options import ModelOptions
    from promptpaint.server.app import create_app
    from promptpaint.server.settings import ServerSettings

    photo = np.ascontiguousarray(cat_rgb[60:188, 100:260])
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    models = ModelOptions(segmenter=str(tiny["sam"]), matting=str(tiny["vitmatte"]), device="cpu")
    with TestClient(create_app(ServerSettings(models=models, preload=False))) as client:
        listed = {op["name"]: op for op in client.get("/v1/operations").json()}
        assert "cutout" in listed and listed["cutout"]["route"] == "/v1/cutout"
        assert {"crop", "background", "feather"} <= set(listed["cutout"]["options"]["properties"])
        assert not {"prompt", "steps", "variants"} & set(listed["cutout"]["options"]["properties"])

        def post(options: dict):
            return client.post("/v1/cutout", files={"image": ("p.png", buf.getvalue(), "image/png")},
                               data={"options": json.dumps(options)})

        done = post({"box": "20,10,140,110"})
        assert done.status_code == 200, done.text
        image = Image.open(io.BytesIO(done.content))
        assert image.mode == "RGBA" and image.size == (160, 128)
        onto = post({"box": "20,10,140,110", "background": "white", "matting": "none"})
        assert onto.status_code == 200 and Image.open(io.BytesIO(onto.content)).mode == "RGB"
        refused = post({"box": "20,10,140,110", "background": "/etc/hostname"})
        assert refused.status_code == 422 and "files cannot be named here" in refused.json()["detail"]


def test_batch_cuts_out_every_photo(tiny, cat_rgb, tmp_path):
    from click.testing import CliRunner

    from promptpaint.cli.app import main

    photos = tmp_path / "in"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.ascontiguousarray(cat_rgb[i * 20:i * 20 + 120, :160])).save(photos / f"p{i}.png")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"edits": [{"op": "cutout", "box": "30,20,130,100", "background": "white"}]}))
    done = CliRunner().invoke(main, ["batch", str(photos), "--recipe", str(recipe), "-o", str(tmp_path / "out"),
                                     *models_args(tiny)])
    assert done.exit_code == 0, done.output
    outputs = sorted(Path(tmp_path / "out").glob("*.png"))
    assert len(outputs) == 2 and all(Image.open(p).size == (160, 120) for p in outputs)


def test_models_check_and_preflight_know_cutout_needs_the_matting_model(fake_hub, tiny):
    from click.testing import CliRunner

    from promptpaint.cli.app import main

    pipe = Pipeline()
    assert pipe.needed_models("cutout", {"box": ["1,2,3,4"]}) == {"segmenter": "sam-b", "matting": "vitmatte"}
    assert pipe.needed_models("cutout", {"box": ["1,2,3,4"], "matting": "none"}) == {"segmenter": "sam-b"}
    assert pipe.needed_models("replace", {"keep": ["shoe"], "matte": True})["matting"] == "vitmatte"
    assert "matting" not in pipe.needed_models("replace", {"keep": ["shoe"]})
    missing = CliRunner().invoke(main, ["models", "check", "--for", "cutout", "--box", "1,1,9,9",
                                        "--segmenter", str(tiny["sam"])])
    assert missing.exit_code == 4 and "matting vitmatte (hustvl/vitmatte-small-composition-1k)" in missing.stderr
    assert "`promptpaint models fetch vitmatte`" in missing.stderr
    ok = CliRunner().invoke(main, ["models", "check", "--for", "cutout", "--box", "1,1,9,9", "--segmenter",
                                   str(tiny["sam"]), "--matting", "none"])
    assert ok.exit_code == 0, ok.output
