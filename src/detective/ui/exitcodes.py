"""Exit codes of the headless commands: an API for scripts and CI."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the run finished (hypotheses may be supported: see --strict)
    SUPPORTED = 1  # with --strict: at least one hypothesis is supported
    USAGE = 2  # bad arguments, unknown symptom/playbook/device, invalid playbook file
    # The run finished, but at least one check crashed (its finding says why); also any
    # unexpected exception in detective itself (`main` writes the traceback to a log file).
    CHECK_ERROR = 3
    # The case could not be loaded, or its code broke the run: a hook or forward() raised, a hook
    # timed out (--hook-timeout), or nothing could be measured (the contract check failed).
    CASE_ERROR = 4
    SESSION_ERROR = 5  # the session could not be created, opened, read, written, or is in use
    ENVIRONMENT = 6  # `detective doctor` found a problem (each line says how to fix it)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: finished findings are saved; `detective resume` continues
