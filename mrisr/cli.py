"""Shared command-line plumbing: one clear line and exit status 2 for bad input."""

import functools
import sys


class UserError(Exception):
    """Bad input from the user: reported as one line, exit status 2, no traceback."""


def script_main(main):
    """Wrap a script's `main(argv)` so user errors and Ctrl-C end cleanly."""

    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv) or 0
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapper


def parse_int_list(text, name="value", count=None):
    """Parse '25,50' into [25, 50]; raise UserError with the option's name otherwise."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{name} must be comma-separated whole numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise UserError(f"{name} needs exactly {count} numbers, got {text!r}")
    if any(value <= 0 for value in values):
        raise UserError(f"{name} must be positive, got {text!r}")
    return values
