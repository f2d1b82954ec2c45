"""The two failures every part of mrisr reports, and how the command layer shows them.

- `UserError`: bad input (a file, an option, an argument): one line, exit status 2.
- `RunFailed`: the input was fine but the work could not finish safely (training diverged, a model
  gives non-finite values): one line, exit status 1.
- `Terminated`: SIGTERM, raised as an interrupt so that every cleanup runs.
- `Paused`: a training run stopped on purpose after a checkpointed epoch; it continues with resume.

Messages name a parameter as the Python caller passes it, in backticks (`volume_index`); the command
layer shows each as its command-line flag (--volume-index), through `mrisr.commands.cli.as_flags`.
"""

import errno


class UserError(Exception):
    """Bad input from the user: reported as one line, exit status 2, no traceback."""


class RunFailed(Exception):
    """Work that could not finish safely (nothing wrong was saved): one line, exit status 1."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as an interrupt so cleanups run."""


class Paused(KeyboardInterrupt):
    """A training run stopped on purpose after an epoch whose checkpoint is written (`pause_after_minutes`):
    the same run continues from there with resume. An interrupt, so that the run's cleanups run."""


def describe_os_error(error):
    """One line for an OSError: the file and what went wrong."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "no space left on the device (nothing was replaced)"
    names = [name for name in (error.filename, error.filename2) if name]
    return f"{' -> '.join(map(str, names))}: {reason}" if names else reason
