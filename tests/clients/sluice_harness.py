"""Starts and stops a real `sluice` broker for the client compatibility tests.

Usage:

    with running_sluice("/path/to/sluice", extra_args=["--default-partitions", "3"]) as broker:
        client = SomeClient(bootstrap=broker.bootstrap)
        ...
        broker.kill()      # SIGKILL, as a crash would
        broker.restart()   # same port, same data directory

The broker's standard error goes to a log file beside the data directory; when start-up
fails, or the broker exits other than cleanly at the end, the tail of that log is part
of the error. Every wait is bounded and the broker never outlives the test process:
it is killed on any error, at interpreter exit, and (through PR_SET_PDEATHSIG) when the
test process itself dies.
"""

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 30.0
READY_MARKER = "listening on"

# Every broker still running, so an interpreter exit cannot leave one behind.
_live = set()


@atexit.register
def _kill_leftovers():
    for broker in list(_live):
        broker.kill()


def _die_with_parent():
    # Runs in the child between fork and exec: if the test process is killed (ctest
    # timeout, ^C), the kernel kills the broker too. PR_SET_PDEATHSIG is 1.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # best effort: atexit still covers the ordinary exits
        pass


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class SluiceProcess:
    """One broker: a port, a data directory, and the process serving them."""

    def __init__(self, sluice_path, extra_args, host, port, data_dir, log_path):
        self.sluice_path = sluice_path
        self.extra_args = list(extra_args)
        self.host = host
        self.port = port
        self.bootstrap = "%s:%d" % (host, port)
        self.data_dir = data_dir
        self.log_path = log_path
        self.process = None
        self.starts = 0
        self.ended_by_test = False  # stop() or kill() ended the current process

    # --- life cycle -------------------------------------------------------------------

    def args(self):
        # Every client suite runs on a multi-core broker (partitions spread over two
        # reactor threads, requests split and forwarded between them) unless the test
        # names --cores itself or $SLUICE_TEST_CORES says otherwise.
        cores = [] if "--cores" in self.extra_args else [
            "--cores", os.environ.get("SLUICE_TEST_CORES", "2")]
        return [self.sluice_path, "--listen", self.bootstrap, "--data-dir", self.data_dir,
                *cores, *self.extra_args]

    def start(self, timeout_s=START_TIMEOUT_S):
        """Starts the broker and waits until it logs that it is listening."""
        assert self.process is None or self.process.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            log.write(("---- start %d: %s\n" % (self.starts + 1, " ".join(self.args()))).encode())
            log.flush()
            log_start = log.tell()
            self.process = subprocess.Popen(self.args(), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log,
                                            preexec_fn=_die_with_parent)
        self.starts += 1
        self.ended_by_test = False
        _live.add(self)
        deadline = time.monotonic() + timeout_s
        while True:
            if READY_MARKER in self._log_since(log_start):
                return
            code = self.process.poll()
            if code is not None:
                _live.discard(self)
                raise RuntimeError("sluice exited with %d before listening\n%s"
                                   % (code, self.log_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("sluice did not log %r within %.0f s\n%s"
                                   % (READY_MARKER, timeout_s, self.log_tail()))
            time.sleep(0.05)

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout_s=STOP_TIMEOUT_S):
        """Sends `sig` and returns the exit code (negative: killed by that signal).

        A broker that does not exit in time is killed, and this raises."""
        if self.process is None:
            return None
        self.ended_by_test = True
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError("sluice did not exit within %.0f s of signal %d\n%s"
                                   % (timeout_s, sig, self.log_tail()))
        _live.discard(self)
        return self.process.returncode

    def kill(self):
        """SIGKILL, as a crash or power cut of the process would; returns the exit code."""
        if self.process is None:
            return None
        self.ended_by_test = True
        if self.process.poll() is None:
            self.process.kill()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:  # cannot happen short of a kernel problem
                pass
        _live.discard(self)
        return self.process.returncode

    def restart(self, timeout_s=START_TIMEOUT_S):
        """Stops the broker if it still runs (SIGTERM), then starts it again on the same
        port and data directory."""
        if self.running():
            code = self.stop()
            if code != 0:
                raise RuntimeError("sluice exited with %d on SIGTERM before restart\n%s"
                                   % (code, self.log_tail()))
        self.start(timeout_s)

    # --- the log ------------------------------------------------------------------------

    def _log_since(self, position):
        try:
            with open(self.log_path, "rb") as log:
                log.seek(position)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_text(self):
        return self._log_since(0)

    def log_tail(self, lines=40):
        text = self.log_text().splitlines()
        return "---- last %d lines of %s ----\n%s" % (min(lines, len(text)), self.log_path,
                                                     "\n".join(text[-lines:]))


@contextlib.contextmanager
def running_sluice(sluice_path, extra_args=(), host="127.0.0.1", keep_dir=None):
    """Yields a started SluiceProcess on a free port with a fresh data directory.

    On a normal exit the broker is stopped with SIGTERM and must exit 0 (unless the test
    already stopped or killed it). On an exception it is killed. The temporary
    directory is removed unless `keep_dir` (or $SLUICE_KEEP_DATA) is set."""
    if keep_dir is None:
        keep_dir = bool(os.environ.get("SLUICE_KEEP_DATA"))
    root = tempfile.mkdtemp(prefix="sluice-client-test-")
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir)
    broker = SluiceProcess(os.path.abspath(sluice_path), extra_args, host, free_port(host),
                           data_dir, os.path.join(root, "sluice.log"))
    ok = False
    try:
        broker.start()
        yield broker
        ok = True
    finally:
        if not ok:
            broker.kill()
        elif not broker.ended_by_test:
            # Still running (stop it: it must exit 0), or it died on its own (a crash).
            died = not broker.running()
            code = broker.stop()
            if code != 0 or died:
                ok = False
                raise AssertionError("sluice %s with %s (expected a clean exit 0 on SIGTERM)\n%s"
                                     % ("died on its own" if died else "exited on SIGTERM",
                                        code, broker.log_tail()))
        if not keep_dir and ok:
            shutil.rmtree(root, ignore_errors=True)
        elif not ok:
            print("sluice data and log kept in %s" % root)


def take_sluice_arg(argv):
    """Removes `--sluice PATH` (or `--sluice=PATH`) from argv and returns PATH, falling
    back to $SLUICE_BINARY; the rest of argv is left for unittest.main()."""
    path = os.environ.get("SLUICE_BINARY")
    rest = [argv[0]]
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "--sluice" and i + 1 < len(argv):
            path = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--sluice="):
            path = arg[len("--sluice="):]
        else:
            rest.append(arg)
        i += 1
    if not path:
        raise SystemExit("usage: %s --sluice PATH [unittest args]" % argv[0])
    if not os.access(path, os.X_OK):
        raise SystemExit("%s: not an executable sluice binary" % path)
    argv[:] = rest
    return path
