"""The package's public face: every name of ``promptpaint.__all__`` imports, and importing the
package, its operations and the CLI loads no torch (``promptpaint --help`` must stay instant)."""

from __future__ import annotations

import subprocess
import sys

import promptpaint


def test_every_public_name_imports():
    assert {"Pipeline", "EditOptions", "Limits", "Operation", "ReplaceEdit", "RemoveEdit", "OutpaintEdit",
            "ModelOptions", "SegmentOptions", "load_recipe", "__version__"} <= set(promptpaint.__all__)
    for name in promptpaint.__all__:
        assert getattr(promptpaint, name) is not None, name
    assert promptpaint.ReplaceEdit.model_fields["op"].default == "replace"
    assert issubclass(promptpaint.OutpaintEdit, promptpaint.EditOptions)


def test_import_and_help_load_no_torch():
    code = ("import sys; import promptpaint; "
            "[getattr(promptpaint, name) for name in promptpaint.__all__]; "
            "from promptpaint import operations; operations.all_operations(); "
            "from click.testing import CliRunner; from promptpaint.cli.app import main; "
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0; "
            "assert CliRunner().invoke(main, ['replace', '--help']).exit_code == 0; "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
