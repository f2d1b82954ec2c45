"""TensorFlow's own start-up lines kept off the terminal.

When TensorFlow is imported, its C++ code writes lines straight to the process's standard error before
its logging is set up ("oneDNN custom operations are on...", "Could not find cuda drivers...", each after
"All log messages before absl::InitializeLog()..."), which no environment variable silences
(TF_CPP_MIN_LOG_LEVEL=3, set too, silences the later ones). `hide_tensorflow_start_up()` installs an
import hook: the first import of tensorflow runs with the standard error's file descriptor pointed at
/dev/null, then restored; nothing else is touched. The commands call it unless --verbose.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import sys


@contextlib.contextmanager
def native_stderr_hidden():
    """File descriptor 2 (where C++ code writes) pointed at /dev/null for the duration; Python's own
    sys.stderr is flushed before and after."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class _QuietTensorFlow(importlib.abc.MetaPathFinder):
    """Finds tensorflow as Python would, and runs its import with the native standard error hidden."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: the real finders find it from here
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            with native_stderr_hidden():
                run(module)

        spec.loader.exec_module = exec_module
        return spec


def hide_in_workers():
    """In a worker process (a study's): hide TensorFlow's start-up lines where the process that started
    it hides them."""
    if os.environ.get("MRISR_QUIET_TENSORFLOW") == "1":
        hide_tensorflow_start_up()


def hide_tensorflow_start_up():
    """Hide TensorFlow's start-up lines in this process (a no-op once tensorflow is imported)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("MRISR_TF_LOG_LEVEL", "3")
    os.environ["MRISR_QUIET_TENSORFLOW"] = "1"  # the worker processes this one starts hide them too
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlow())
