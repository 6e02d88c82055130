"""Real-weight acceptance for matting: what random weights cannot show.

    python -m benchmarks.matting_acceptance [--model vitmatte] [--image image.png --trimap trimap.png]

Needs hustvl/vitmatte-small-composition-1k (the ``vitmatte`` alias, or a local folder) and
transformers' fixture photo and trimap (hf-internal-testing/image-matting-fixtures, downloaded when
not given). Checks, in order:

1. promptpaint's backend on the whole fixture gives transformers' own integration-test values
   (``alphas[0, 0, :3, :3]``, tolerance 1e-4, from tests/models/vitmatte/test_modeling_vitmatte.py);
2. the windowed route (windows of 512 px with the default overlap, forced) stays close to the
   whole-photo route on the unknown band: it prints the mean and 99th-percentile difference;
3. the foreground estimate on the matte: prints how far the band's colours moved.
Exit status 1 if check 1 fails.
"""

from __future__ import annotations

import argparse

import numpy as np

EXPECTED_CORNER = [[0.9977, 0.9987, 0.9990], [0.9980, 0.9998, 0.9998], [0.9983, 0.9998, 0.9998]]
FIXTURES = "hf-internal-testing/image-matting-fixtures"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.matting_acceptance",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vitmatte")
    parser.add_argument("--image", default=None)
    parser.add_argument("--trimap", default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    from PIL import Image

    from promptpaint.backends.matting import load_matter
    from promptpaint.backends.registry import MATTER_FAMILIES, resolve
    from promptpaint.core import alpha as A

    if args.image is None or args.trimap is None:
        from huggingface_hub import hf_hub_download

        args.image = hf_hub_download(FIXTURES, "image.png", repo_type="dataset")
        args.trimap = hf_hub_download(FIXTURES, "trimap.png", repo_type="dataset")
    image = np.asarray(Image.open(args.image).convert("RGB"))
    trimap = np.asarray(Image.open(args.trimap).convert("L"))
    matter = load_matter(resolve(args.model, MATTER_FAMILIES, "matting model"), args.device, "float32")

    whole = matter.predict(image, trimap)
    corner = whole[:3, :3]
    ok = bool(np.allclose(corner, EXPECTED_CORNER, atol=1e-4))
    print(f"1. whole photo, top-left 3x3 alphas {[[round(float(v), 4) for v in row] for row in corner]}: "
          f"{'matches' if ok else 'DIFFERS FROM'} transformers' integration test")

    matter.window = 512
    windowed = matter.matte(image, trimap)
    band = trimap == A.UNKNOWN
    diff = np.abs(windowed[band] - whole[band])
    windows = A.matting_windows(band, matter.window, matter.overlap, matter.context, matter.multiple)
    print(f"2. {len(windows)} windows of <= 512 px vs the whole photo, on {band.sum()} band pixels: "
          f"mean |diff| {diff.mean():.4f}, 99th percentile {np.percentile(diff, 99):.4f}")

    alpha = A.assemble_alpha(trimap, whole)
    recoloured = A.recolour_band(image, alpha, trimap)
    moved = np.abs(recoloured.astype(int) - image.astype(int)).sum(axis=2)
    soft = band & (alpha > 0) & (alpha < 255)
    print(f"3. foreground colours: {soft.sum()} see-through pixels, mean change {moved[soft].mean():.1f} "
          f"(sum over RGB, 0..765); solid pixels unchanged: {bool((moved[~soft] == 0).all())}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
