"""`promptpaint models list|check|fetch|path`, offline and against a fake hub (no network)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from click.testing import CliRunner

from promptpaint.cli.app import main


def run(*args):
    return CliRunner().invoke(main, ["models", *map(str, args)])


def test_list_works_offline_with_an_empty_cache(fake_hub):
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ALIAS", "ROLE", "HUB_ID", "SIZE", "GATED", "LICENCE", "COMMERCIAL", "WHERE"]
    flux = next(line for line in lines if line.startswith("flux-fill"))
    assert "33.7 GB" in flux and "FLUX.1 [dev] Non-Commercial License" in flux and "not downloaded" in flux
    sd15 = next(line for line in lines if line.startswith("sd15"))
    assert "4.3 GB (fp16 2.1 GB)" in sd15 and "yes, with use restrictions" in sd15
    assert next(line for line in lines if line.startswith("telea")).endswith("built in")


def test_list_json_and_role_filter_show_where_a_cached_model_is(fake_hub, tiny):
    snapshot = fake_hub.add("facebook/sam-vit-base", {})
    shutil.copytree(tiny["sam"], snapshot, dirs_exist_ok=True)
    result = run("list", "--role", "segmenter", "--json")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["alias"] for r in rows] == ["sam-b", "sam-l", "sam-h", "sam2-t", "sam2-s", "sam2-b", "sam2-l", "sam3"]
    assert rows[0]["where"] == str(snapshot) and rows[0]["bytes"] == 375_049_084
    assert rows[-1]["gated"] == "yes" and rows[-1]["commercial"] == "yes, with use restrictions"


def test_check_names_every_missing_model_in_one_line_and_exits_4(fake_hub):
    result = run("check", "--for", "replace")
    assert result.exit_code == 4
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: 3 models are not on this machine: detector gdino-tiny")
    assert "`promptpaint models fetch gdino-tiny sam-b sd15`" in result.stderr


def test_check_with_folders_and_model_options(fake_hub, tiny):
    result = run("check", "--for", "remove", "--detector", tiny["grounding-dino"], "--segmenter", tiny["sam"],
                 "--remover", "telea")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"ok  {tiny['grounding-dino']}  {tiny['grounding-dino']}",
                                          f"ok  {tiny['sam']}  {tiny['sam']}", "ok  telea  built in"]
    missing = run("check", "sam-b", "/no/such/sam", "lama")
    assert missing.exit_code == 4
    assert ("segmenter sam-b (facebook/sam-vit-base); model /no/such/sam (neither a known alias, a hub id "
            "(owner/name) nor an existing folder); remover lama") in missing.stderr
    assert "`promptpaint models fetch sam-b lama`" in missing.stderr


def test_fetch_downloads_exactly_the_files_promptpaint_reads(fake_hub):
    fake_hub.serve()
    result = run("fetch", "sam-b", "lama", "telea")
    assert result.exit_code == 0, result.output
    assert sorted(fake_hub.downloads) == [("facebook/sam-vit-base", "config.json"),
                                          ("facebook/sam-vit-base", "model.safetensors"),
                                          ("facebook/sam-vit-base", "preprocessor_config.json"),
                                          ("g-ronimo/lama", "lama.onnx")]
    sam = fake_hub.cache / "models--facebook--sam-vit-base" / "snapshots" / fake_hub.commit
    assert result.stdout.splitlines()[0] == f"sam-b: {sam}"
    assert result.stdout.splitlines()[2] == "telea: built in, nothing to fetch"
    # fetched models are then found offline
    fake_hub.monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run("path", "sam-b").stdout.strip() == str(sam)
    assert run("check", "sam-b", "lama").exit_code == 0


def test_fetch_for_a_command_takes_the_fp16_variant_when_it_will_run_in_half_precision(fake_hub):
    fake_hub.serve()
    result = run("fetch", "--for", "outpaint", "--device", "cpu", "--dtype", "float16")
    assert result.exit_code == 0, result.output
    weights = sorted(name for _, name in fake_hub.downloads if name.endswith(".safetensors"))
    assert weights == ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                       "vae/diffusion_pytorch_model.fp16.safetensors"]


def test_fetch_on_the_cpu_takes_full_precision_and_skips_what_is_here(fake_hub):
    fake_hub.serve()
    assert run("fetch", "--for", "outpaint", "--inpainter", "sd15", "--device", "cpu").exit_code == 0
    weights = sorted(name for _, name in fake_hub.downloads if name.endswith(".safetensors"))
    assert weights == ["text_encoder/model.safetensors", "unet/diffusion_pytorch_model.safetensors",
                       "vae/diffusion_pytorch_model.safetensors"]
    before = len(fake_hub.downloads)
    assert run("fetch", "sd15", "--device", "cpu").exit_code == 0
    assert len(fake_hub.downloads) == before  # already complete: nothing downloaded again


def test_fetch_errors_are_one_line(fake_hub):
    offline = run("fetch", "sd15")
    assert offline.exit_code == 2 and "HF_HUB_OFFLINE is set" in offline.stderr and offline.stderr.count("\n") == 1
    fake_hub.serve()
    nothing = run("fetch")
    assert nothing.exit_code == 2 and "name the models to fetch" in nothing.stderr
    unknown = run("fetch", "someone/gone")
    assert unknown.exit_code == 4 and "does not exist on the Hugging Face hub" in unknown.stderr


def test_path_of_missing_and_built_in_models(fake_hub, tiny):
    missing = run("path", "sd15")
    assert missing.exit_code == 4 and "`promptpaint models fetch sd15`" in missing.stderr
    assert run("path", "telea").exit_code == 2
    assert run("path", tiny["lama"]).stdout.strip() == str(tiny["lama"])


def test_models_commands_import_no_torch(fake_hub):
    code = ("import sys; from promptpaint.cli.app import main\n"
            "try: main(['models', 'list'], prog_name='promptpaint')\n"
            "except SystemExit: pass\n"
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "False False"


# ------------------------------------------------------------------ the same check as every command's preflight

def test_replace_without_weights_names_all_three_missing_models_in_one_line(cat_png, tmp_path):
    """A new user's first run, offline with an empty HF_HOME: one line, every missing model, the fix."""
    import os
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    env.pop("HF_HUB_CACHE", None)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "promptpaint", "replace", str(cat_png), "--find", "the cat",
                           "--prompt", "a fox", "-o", str(tmp_path / "fox.png")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 4
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: 3 models are not on this machine: ")
    for model in ("detector gdino-tiny", "segmenter sam-b", "inpainter sd15"):
        assert model in proc.stderr
    assert "`promptpaint models fetch gdino-tiny sam-b sd15`" in proc.stderr
    assert not (tmp_path / "fox.png").exists()
    assert time.perf_counter() - started < 30  # no model library was imported, nothing waited for a network


def test_check_for_a_command_reads_its_own_options_as_its_preflight_does(fake_hub, tiny):
    # a box needs no detector; an outpaint no selection; SAM 3 finds from text itself
    box = run("check", "--for", "replace", "--box", "10,10,90,90", "--inpainter", "sdxl")
    assert box.exit_code == 4 and "segmenter sam-b" in box.stderr and "detector" not in box.stderr
    assert "`promptpaint models fetch sam-b sdxl`" in box.stderr
    sam3 = run("check", "--for", "remove", "--find", "cat", "--segmenter", "sam3", "--remover", "telea")
    assert sam3.exit_code == 4 and "segmenter sam3" in sam3.stderr and "gdino" not in sam3.stderr
    assert run("check", "--for", "segment", "--mask", "m.png").stdout == "no model needed\n"
    outpaint = run("check", "--for", "outpaint", "--inpainter", tiny["sd-inpaint"], "--prefill", "none")
    assert outpaint.exit_code == 0 and outpaint.stdout == f"ok  {tiny['sd-inpaint']}  {tiny['sd-inpaint']}\n"
    prefilled = run("check", "--for", "outpaint", "--inpainter", tiny["sd-inpaint"])  # pre-fills with LaMa
    assert prefilled.exit_code == 4 and "prefill lama" in prefilled.stderr
    bad = run("check", "--for", "replace", "-o", "x.png")
    assert bad.exit_code == 2 and bad.stderr == "error: --for replace: No such option '-o'.\n"
    mixed = run("check", "sam-b", "--find", "x")
    assert mixed.exit_code == 2 and "after --for COMMAND" in mixed.stderr


def test_check_and_preflight_agree_on_every_command(fake_hub, tiny):
    """`models check --for COMMAND` lists exactly the models the command's preflight requires."""
    from promptpaint.pipeline.pipeline import Pipeline

    pipe = Pipeline()
    assert pipe.needed_models("replace", {"find": ["cat"]}) == {
        "detector": "gdino-tiny", "segmenter": "sam-b", "inpainter": "sd15"}
    assert pipe.needed_models("replace", {"keep": ["shoe"]})["detector"] == "gdino-tiny"
    assert pipe.needed_models("remove", {"box": ["1,2,3,4"]}) == {"segmenter": "sam-b", "remover": "lama"}
    assert pipe.needed_models("remove", {}, mask_given=True) == {"remover": "lama"}
    # outpaint and a removal by a diffusion model pre-fill with LaMa; replace, or LaMa itself, do not
    assert pipe.needed_models("outpaint", {"aspect": "16:9"}) == {"inpainter": "sd15", "prefill": "lama"}
    assert pipe.needed_models("outpaint", {"aspect": "16:9", "prefill": "none"}) == {"inpainter": "sd15"}
    assert pipe.needed_models("remove", {"remover": "sd15"}, mask_given=True) == {"remover": "sd15", "prefill": "lama"}
    assert pipe.needed_models("replace", {"box": ["1,2,3,4"], "prefill": "lama"}) == {
        "segmenter": "sam-b", "inpainter": "sd15", "prefill": "lama"}
    assert pipe.needed_models("detect", {"find": ["cat"]}) == {"detector": "gdino-tiny"}
    # shadows are found by the detector even when the object is a box (segment and remove alike)
    shadow = {"box": ["1,2,3,4"], "with_shadow": True}
    assert pipe.needed_models("segment", shadow) == {"detector": "gdino-tiny", "segmenter": "sam-b"}
    assert pipe.needed_models("remove", shadow) == {"detector": "gdino-tiny", "segmenter": "sam-b", "remover": "lama"}
    assert pipe.needed_models("segment", {"box": ["1,2,3,4"]}) == {"segmenter": "sam-b"}
    assert pipe.needed_models("segment", {}, mask_given=True) == {}
    assert Pipeline(segmenter=str(tiny["sam3"])).needed_models("segment", {"find": ["cat"]}) == {
        "segmenter": str(tiny["sam3"])}


def test_fetch_for_a_command_with_its_options(fake_hub):
    fake_hub.serve()
    result = run("fetch", "--for", "remove", "--box", "1,1,9,9", "--remover", "lama")
    assert result.exit_code == 0, result.output
    assert sorted({repo for repo, _ in fake_hub.downloads}) == ["facebook/sam-vit-base", "g-ronimo/lama"]
