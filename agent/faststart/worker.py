"""The worker: a fork of the server that becomes the caller's `godwit` invocation.

Everything the kernel would have given a freshly started `godwit` and that a fork does not
inherit from its caller is put in place here, in this order: signal dispositions and mask,
standard file descriptors, working directory, umask, environment (and what the interpreter
derived from it: the time zone, the temporary folder, the standard streams), argv. What cannot
be put in place is part of the server's fingerprint instead (fingerprint.py). Then the CLI runs
exactly as the console script runs it, and the interpreter exits as it would have.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import time

from agent.faststart.client import all_signals
from agent.faststart.supervisor import Job


def _signals(job: Job) -> None:
    signal.set_wakeup_fd(-1)
    for sig in all_signals():
        if sig in job.ignored:
            handler = signal.SIG_IGN
        elif sig == signal.SIGINT:
            handler = signal.default_int_handler  # what Python installs at start-up
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except (OSError, ValueError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, job.sigmask)


def _stream(fd: int, template: io.TextIOWrapper, write: bool) -> io.TextIOWrapper:
    """A standard stream over `fd` made as Python makes it at start-up: the server's stream
    (same locale and flags, as the fingerprint ensures) gives encoding, errors and
    write-through; line buffering follows whether the new fd is a terminal (always for
    stderr)."""
    raw = io.FileIO(fd, "wb" if write else "rb", closefd=False)
    raw.name = ("<stdin>", "<stdout>", "<stderr>")[fd]
    if write and template.write_through:  # -u or PYTHONUNBUFFERED: no buffer at all
        buffered = raw
    else:
        buffered = io.BufferedWriter(raw) if write else io.BufferedReader(raw)
    line_buffering = not template.write_through and (fd == 2 or os.isatty(fd))
    text = io.TextIOWrapper(
        buffered,
        encoding=template.encoding,
        errors=template.errors,
        newline="\n",
        line_buffering=line_buffering,
        write_through=template.write_through,
    )
    text.mode = "w" if write else "r"
    return text


def _stdio(job: Job) -> None:
    for target, fd in enumerate(job.stdio_fds):
        os.dup2(fd, target)  # inheritable, as a process's 0, 1 and 2 are
        os.close(fd)
    sys.stdin = sys.__stdin__ = _stream(0, sys.__stdin__, write=False)
    sys.stdout = sys.__stdout__ = _stream(1, sys.__stdout__, write=True)
    sys.stderr = sys.__stderr__ = _stream(2, sys.__stderr__, write=True)


def _environment(job: Job) -> None:
    os.fchdir(job.cwd_fd)
    os.close(job.cwd_fd)
    os.umask(job.umask)
    os.environb.clear()
    os.environb.update(entry.split(b"=", 1) for entry in job.environ if b"=" in entry[1:])
    time.tzset()  # TZ may differ from the server's
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # recomputed from this TMPDIR on first use
    sys.argv = [os.fsdecode(a) for a in job.argv]
    sys.orig_argv = [sys.executable, *sys.argv]


def run(job: Job) -> None:
    """Become the invocation, run the CLI as the console script does, and exit as Python would."""
    _signals(job)
    _stdio(job)
    _environment(job)
    from agent.cli import main

    try:
        code = main()
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())
        _shutdown()
        # Python's own ending for an uncaught ^C: die by SIGINT, so the shell sees it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:  # noqa: BLE001 - an uncaught error ends the process, as at top level
        sys.excepthook(*sys.exc_info())
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    _shutdown()
    os._exit(code & 0xFF)


def _shutdown() -> None:
    """What Python does at exit that anyone can see: wait for non-daemon threads, run atexit
    handlers (weakref finalizers among them), flush files left open and the standard streams.

    The rest of interpreter finalization (tearing down every module) is skipped: in a fork of
    the server it would write to every inherited page (reference counts) and cost more than a
    second. Files this invocation opened are found among the objects it created (the server's
    objects are frozen out of the collector) and flushed, so no buffered write is lost."""
    import atexit
    import gc
    import threading

    threading._shutdown()
    atexit._run_exitfuncs()
    for generation in (0, 1, 2):
        for obj in gc.get_objects(generation):
            if isinstance(obj, (io.BufferedWriter, io.BufferedRandom, io.TextIOWrapper)):
                try:
                    if not obj.closed:
                        obj.flush()
                except (OSError, ValueError):
                    pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
