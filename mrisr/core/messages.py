"""The library's voice: every progress line and note goes through the standard `logging` module (the
"mrisr" logger; a line that begins "warning:" at the WARNING level). The commands show them on standard
output (`show_messages`, called once by the command layer); a Python caller configures logging as it
likes, and without that sees the warnings only (Python's last-resort handler), never the chatter."""

import logging
import sys

LOGGER = logging.getLogger("mrisr")


def inform(message):
    """One line of the library's output: a note, or a warning when it begins with "warning:"."""
    if str(message).startswith("warning:"):
        LOGGER.warning(message)
    else:
        LOGGER.info(message)


class CurrentStandardOutput(logging.StreamHandler):
    """A handler that writes to whatever sys.stdout is when a message comes (pytest and notebooks
    replace it after the handler is made)."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass  # always the current sys.stdout


class TranslatedFormatter(logging.Formatter):
    """Each line through `translate` (the command layer shows a parameter's name as its flag)."""

    def __init__(self, translate=None):
        super().__init__("%(message)s")
        self.translate = translate

    def format(self, record):
        line = super().format(record)
        return self.translate(line) if self.translate else line


def show_messages(translate=None):
    """Show the library's lines on standard output, as the commands print them (one handler per process),
    each through `translate` when one is given."""
    handlers = [handler for handler in LOGGER.handlers if isinstance(handler, CurrentStandardOutput)]
    if not handlers:
        handlers = [CurrentStandardOutput()]
        LOGGER.addHandler(handlers[0])
    handlers[0].setFormatter(TranslatedFormatter(translate))
    LOGGER.setLevel(logging.INFO)
    LOGGER.propagate = False
