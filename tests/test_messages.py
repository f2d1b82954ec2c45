"""The library speaks through logging: the commands show every line, a Python caller who configures
nothing sees the warnings only, and one who configures logging gets them where it says."""

import subprocess
import sys

from tests.conftest import ROOT

SPEAK = "from mrisr.core.messages import inform; inform('Training 3 epochs'); inform('warning: only 3 steps')"


def python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)


def test_a_python_caller_sees_the_warnings_only():
    result = python(SPEAK)
    assert result.stdout == "" and result.stderr == "warning: only 3 steps\n"


def test_the_commands_show_every_line_on_standard_output():
    result = python("from mrisr.core.messages import show_messages; show_messages(); " + SPEAK)
    assert result.stdout == "Training 3 epochs\nwarning: only 3 steps\n" and result.stderr == ""


def test_a_callers_logging_configuration_gets_the_lines():
    result = python("import logging; logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s "
                    "%(message)s'); " + SPEAK)
    assert result.stderr == "INFO mrisr Training 3 epochs\nWARNING mrisr warning: only 3 steps\n"


def test_a_library_error_names_the_parameter_and_the_command_shows_its_flag(tmp_path, capsys):
    import nibabel
    import numpy as np
    import pytest

    from mrisr.errors import UserError
    from mrisr.scans.scan import read_scan
    from tests.conftest import run_script

    path = tmp_path / "flat.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 3), np.float32), np.eye(4)), path)
    with pytest.raises(UserError, match="^`volume_index` is for a 4-D NIfTI"):
        read_scan(path, volume_index=1)
    code, _, err = run_script("upscale", ["mri-x2", str(path), str(tmp_path / "out.nii.gz"), "--volume-index", "1"],
                              capsys)
    assert code == 2 and "--volume-index is for a 4-D NIfTI" in err and "`" not in err


def test_the_flag_of_a_parameter():
    from mrisr.commands.cli import as_flags

    assert as_flags("give `axis` and `slice_thickness`, or a lower `learning_rate`") == \
        "give --axis and --slice-thickness, or a lower --lr"


def test_every_parameter_a_library_message_names_is_a_flag_of_some_command():
    import ast
    import re

    from mrisr.commands.cli import as_flags

    flags = set()
    for path in (ROOT / "mrisr" / "commands").glob("*.py"):
        flags.update(re.findall(r'add_argument\(\s*"(--[a-z-]+)"', path.read_text()))
    named = {}
    speakers = {"UserError", "RunFailed", "NearlyIsotropic", "inform", "say"}
    for path in (ROOT / "mrisr").rglob("*.py"):
        if "commands" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in speakers:
                texts = [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                for text in texts:
                    for name in re.findall(r"`([a-z][a-z0-9_]*)`", text):
                        named.setdefault(as_flags(f"`{name}`"), set()).add(path.name)
    assert len(named) >= 15, named  # the messages that name parameters were found
    assert not {flag: files for flag, files in named.items() if flag not in flags}
