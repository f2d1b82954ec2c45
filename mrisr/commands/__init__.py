"""The command-line layer: one module per script (the top-level scripts and the `mrisr-*` commands
call these). Each parses its options, translates them into the package's plain parameters, and
reports bad input in one line with exit status 2 (see `mrisr.commands.cli`)."""
