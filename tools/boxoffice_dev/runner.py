"""What every test runner of `make check` shares: one stack of its own,
always torn down, and one summary line.

    tally = runner.Tally()
    rc = runner.Run("integration tests", "boxoffice-it-", keep=args.keep).main(
        make_stack=lambda d: runner.test_stack(d, workers=4, seed=SEED),
        body=lambda stack, tmp, tally: ...)       # counts into tally

Run.main() installs SIGTERM/SIGHUP/SIGINT handlers (an interrupt still
tears down), stops the stacks of earlier runs that died (reap_orphans),
starts the stack in a fresh temporary directory on free loopback ports
(printing the logs' tails if it does not start), runs the body, prints the
logs' tails when something failed, stops the stack, counts processes left
behind as a failure, and prints as its last line

    N passed, N failed[, N skipped]

which ./dev's summarize_tests reads. Its return value is the exit code.

Also here: srcdir()/builddir() (top_srcdir/top_builddir as `make check`
sets them), the `destructive` mark, ordered() and run_unittest() for
unittest suites.
"""

import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import unittest

from .errors import StackError
from .fixture import TestStack, reap_orphans
from .stack import DEFAULT_SRCDIR

SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
SKIP = 77     # automake's exit code for "skipped"


def srcdir():
    return os.path.abspath(os.environ.get("top_srcdir") or DEFAULT_SRCDIR)


def builddir():
    return os.path.abspath(os.environ.get("top_builddir") or srcdir())


def test_stack(directory, log=None, **kw):
    """A TestStack of this source and build tree in directory."""
    return TestStack(directory, srcdir=srcdir(), builddir=builddir(),
                     log=log or (lambda m: print("[stack] " + m, file=sys.stderr, flush=True)),
                     **kw)


def summary(passed, failed, skipped=0):
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line


def add_arguments(ap, pattern_help="only tests whose name contains PATTERN (repeatable)"):
    """-k PATTERN (repeatable), --keep and --list, as every runner has them."""
    ap.add_argument("-k", action="append", default=[], dest="patterns", metavar="PATTERN",
                    help=pattern_help)
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (logs, data) after the run")
    ap.add_argument("--list", action="store_true", help="list the tests and exit (no stack)")
    return ap


class Interrupted(BaseException):
    pass


def _on_signal(signum, frame):
    raise Interrupted("signal %d" % signum)


class Tally:
    """Counts of one run; the body adds to them as it goes, so an
    interrupted run still reports what ran."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0


class Run:
    """One runner's life around its body (see the module's docstring)."""

    def __init__(self, title, prefix, keep=False, log_lines=40):
        self.title, self.prefix, self.keep, self.log_lines = title, prefix, keep, log_lines
        self.stack = None
        self.tmp = None
        self.cleanups = []        # called before the stack stops, last first
        self.epilogue = []        # called after teardown, before the summary

    def main(self, make_stack, body):
        """make_stack(tmp) -> an unstarted TestStack; body(stack, tmp, tally)
        runs the tests. Returns the exit code (0: everything passed)."""
        for sig in SIGNALS:
            signal.signal(sig, _on_signal)
        tally = Tally()
        try:
            print("%s: srcdir=%s builddir=%s" % (self.title, srcdir(), builddir()), flush=True)
            reap_orphans(tempfile.gettempdir(), self.prefix)
            self.tmp = tempfile.mkdtemp(prefix=self.prefix)
            self.stack = make_stack(self.tmp)
            self.stack.owner_pid = os.getpid()
            if self._start():
                try:
                    body(self.stack, self.tmp, tally)
                except (Exception, StackError) as e:
                    print("\nthe %s run failed: %r" % (self.title, e), flush=True)
                    traceback.print_exc(file=sys.stdout)
                    tally.failed += 1
                if tally.passed + tally.failed + tally.skipped == 0:
                    print("nothing ran", flush=True)
                    tally.failed += 1
            else:
                tally.failed += 1
            if tally.failed and self.stack:
                print("\n---- stack logs (tail) ----\n%s\n---- end of logs ----"
                      % self.stack.tail_logs(self.log_lines), flush=True)
        except Interrupted as e:
            print("\ninterrupted (%s); tearing down" % e, flush=True)
            tally.failed += 1
        finally:
            for sig in SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            tally.failed += self._teardown()
            for fn in self.epilogue:
                fn()
            print(summary(tally.passed, tally.failed, tally.skipped), flush=True)
        return 1 if tally.failed else 0

    def _start(self):
        t0 = time.time()
        try:
            self.stack.start()
        except (Exception, Interrupted) as e:
            print("\nthe %s stack did not start: %s" % (self.title, e), flush=True)
            if not isinstance(e, StackError):
                traceback.print_exc(file=sys.stdout)
            print("\n---- stack logs ----\n%s\n---- end of logs ----"
                  % self.stack.tail_logs(60), flush=True)
            if isinstance(e, Interrupted):
                raise
            return False
        s = self.stack
        print("stack up in %.1fs in %s (http %d, primary %d, replica %d, redis %d, "
              "%d of %d workers)" % (time.time() - t0, self.tmp, s.ports["http"],
                                     s.ports["primary"], s.ports["replica"], s.ports["redis"],
                                     s.workers, s.processes), flush=True)
        return True

    def _teardown(self):
        """Stop everything; the number of failures it adds."""
        failed = 0
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                print("cleanup: %r" % e, flush=True)
        if self.stack is not None:
            try:
                self.stack.stop()
            except Exception as e:
                print("teardown: %s" % e, flush=True)
                failed += 1
            left = self.stack.leftover_processes()
            if left:
                print("teardown left processes behind: %s" % left, flush=True)
                failed += 1
        if self.tmp:
            if self.keep:
                print("kept %s" % self.tmp, flush=True)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        return failed


# ------------------------------------------------------------------ unittest

def run_unittest(tests, tally):
    """Run unittest tests (verbose, on stdout), counting into tally. An
    interrupt is that test's error and stops the run there (unittest would
    go on with the next test); it is raised again afterwards."""
    class Result(unittest.TextTestResult):
        interrupted = None
        durations = []

        def startTest(self, test):
            self._t0 = time.monotonic()
            super().startTest(test)

        def stopTest(self, test):
            super().stopTest(test)
            Result.durations.append((time.monotonic() - self._t0, test.id()))

        def addError(self, test, err):
            super().addError(test, err)
            if issubclass(err[0], Interrupted):
                Result.interrupted = err[1]
                self.stop()

    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2, buffer=False,
                                     resultclass=Result).run(unittest.TestSuite(tests))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # Where the suite's time goes, so that a slow test is seen when added.
    slow = sorted(Result.durations, reverse=True)[:10]
    if slow:
        print("slowest tests:")
        for dt, name in slow:
            print("  %6.1f s  %s" % (dt, name))
    tally.failed += failed
    tally.skipped += len(result.skipped)
    tally.passed += result.testsRun - failed - len(result.skipped)
    if Result.interrupted is not None:
        raise Result.interrupted


def destructive(obj):
    """Mark a test class or method that stops, pauses or breaks a server:
    the runner runs every such test after all the others (each still
    brings the stack back)."""
    obj.boxoffice_destructive = True
    return obj


def heavy(obj):
    """Mark a test class or method whose point is load or statistics (many
    clients, a long run, a large sample) rather than a code path the other
    tests miss. BOXOFFICE_SKIP_HEAVY=1 skips it: the sanitizer build sets it,
    since there the instrumented workers run such a test several times
    slower and it proves nothing the plain run has not."""
    return unittest.skipIf(os.environ.get("BOXOFFICE_SKIP_HEAVY") == "1",
                           "heavy test (BOXOFFICE_SKIP_HEAVY=1)")(obj)


def is_destructive(test):
    method = getattr(test, getattr(test, "_testMethodName", ""), None)
    return bool(getattr(method, "boxoffice_destructive", False)
                or getattr(type(test), "boxoffice_destructive", False))


def flatten(suite):
    for t in suite:
        if hasattr(t, "__iter__"):
            yield from flatten(t)
        else:
            yield t


def ordered(tests):
    """tests in their order, the destructive ones moved to the end."""
    tests = list(tests)
    return [t for t in tests if not is_destructive(t)] + [t for t in tests if is_destructive(t)]
