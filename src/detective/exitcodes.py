"""Exit codes of the headless commands: an API for scripts and CI."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the run finished (hypotheses may be supported: see --strict)
    SUPPORTED = 1  # with --strict: at least one hypothesis is supported
    USAGE = 2  # bad arguments, unknown symptom/playbook/device, invalid playbook file
    CHECK_ERROR = 3  # the run finished, but at least one check crashed (its finding says why)
    CASE_ERROR = 4  # the case file could not be loaded or its hooks broke the run
    SESSION_ERROR = 5  # the session could not be created, opened or read
    ENVIRONMENT = 6  # `detective doctor` found a problem (each line says how to fix it)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: finished findings are saved; `detective resume` continues
