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
