"""The CLI under hostile conditions (issue 9): negative numbers, several routes, --output FILE,
build folders, a progress line on a terminal, Ctrl-C, closed pipes, full disks, ASCII-only
stdout and a cache that cannot be written.  Each ends with one line on stderr (or none) and the
conventional exit status, never a traceback."""
import errno
import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
import warnings

import pytest

from derive import build
from derive.cli import CLOSED_PIPE, INTERRUPTED, main

ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def environ(**changes):
    """This process's environment (its DERIVE_CACHE_DIR is the test run's cache) changed:
    a value of None removes the variable."""
    env = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def cli(*argv, env=None, **kwargs):
    """``python -m derive ARGV`` in a child process."""
    kwargs.setdefault("capture_output", "stdout" not in kwargs)
    return subprocess.run([sys.executable, "-m", "derive", *map(str, argv)], env=env or environ(),
                          encoding="utf-8", errors="replace", timeout=600, **kwargs)


def one_line(err: str) -> str:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def warm():
    """The test run's cache holds a pass for every derivation, so that the children that are
    not about the cache print at once."""
    done = cli("code", "--quiet", "--output", os.devnull)
    assert done.returncode == 0, done.stderr
    done = cli("text", "--route", "chain", "--output", os.devnull)
    assert done.returncode == 0, done.stderr


def under_a_terminal(argv, env, tmp_path, when_seen=None, timeout=300):
    """Run ``python -m derive ARGV`` with stderr on a pseudo-terminal (stdout in a file); call
    ``when_seen(process, output so far)`` as the terminal output arrives.  Returns the exit
    status, stdout and what the terminal received."""
    master, slave = pty.openpty()
    stdout_path = tmp_path / f"stdout-{time.monotonic_ns()}"
    with open(stdout_path, "w") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "derive", *argv], stdin=subprocess.DEVNULL,
                                stdout=stdout, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                proc.kill()
                pytest.fail(f"derive {' '.join(argv)} did not finish: {seen!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every end of the terminal's other side is closed
                break
            if not chunk:
                break
            seen += chunk
            if when_seen is not None:
                when_seen(proc, seen)
        proc.wait(timeout=timeout)
    finally:
        os.close(master)
    return proc.returncode, stdout_path.read_text(encoding="utf-8"), seen.decode("utf-8", "replace")


# -- 2. negative numbers and masks, as typed ----------------------------------------------------

@pytest.mark.parametrize("argv, lines", [
    (["--logits", "0", "-inf", "1", "--label", "0"],
     ["softmax   0.2689 0.0000 0.7311", "loss      1.3133", "gradient  -0.7311 0.0000 0.7311"]),
    (["--logits", "1", "-2e3", "--label", "0"],
     ["softmax   1.0000 0.0000", "loss      0.0000", "gradient  0.0000 0.0000"]),
    (["--logits", "-.5", "-1E+3", "-Infinity", "0.5", "--label", "3", "--digits", "2"],
     ["softmax   0.27 0.00 0.00 0.73", "loss      0.31", "gradient  0.27 0.00 0.00 -0.27"]),
    (["--label", "1", "--logits", "-1e0", "-2"],  # options in any order, numbers still values
     ["softmax   0.7311 0.2689", "loss      1.3133", "gradient  0.7311 -0.7311"]),
])
def test_eval_reads_negative_numbers_and_masks_as_typed(capsys, argv, lines):
    code, out, err = run(capsys, "eval", *argv)
    assert (code, err) == (0, "")
    assert out.splitlines() == lines


@pytest.mark.parametrize("argv, message", [
    (["--logits", "1", "2", "--target", "-1e-3", "1.001"], "--target: probabilities must not be negative"),
    (["--probs", "-.5", "1.5", "--label", "0"], "--probs: probabilities must not be negative"),
    (["--probs", "-inf", "1", "--label", "0"], "--probs: -inf is not allowed (must be finite)"),
    (["--logits", "1", "-2e3", "--label", "0", "--digits", "-1"], "--digits: -1 is out of range 0..17"),
])
def test_negative_numbers_where_they_are_wrong_get_their_own_message(capsys, argv, message):
    code, out, err = run(capsys, "eval", *argv)
    assert code == 2 and out == ""
    assert message in one_line(err)


def test_eval_help_and_real_options_still_work(capsys):
    code, out, _ = run(capsys, "eval", "--help")
    assert code == 0 and "--logits Z [Z ...]" in out and "-inf" in out
    code, _, err = run(capsys, "eval", "--logits", "1", "-2", "--bogus", "--label", "0")
    assert code == 2 and "unrecognized arguments: --bogus" in one_line(err)


# -- 5. several routes, did-you-mean, --output FILE ---------------------------------------------

@pytest.mark.parametrize("routes", [
    ["--route", "log-sigmoid", "shift-invariance"],
    ["--route", "log-sigmoid", "--route", "shift-invariance"],
    ["--route", "log-sigmoid", "--route", "shift-invariance", "log-sigmoid"],  # each once
])
def test_several_routes_are_printed_in_the_order_given(capsys, routes):
    code, out, _ = run(capsys, "check", *routes)
    assert code == 0
    assert [line.split(":")[0] for line in out.splitlines()] == ["log-sigmoid", "shift-invariance"]
    for fmt in ("latex", "markdown", "text"):
        first, second = (run(capsys, fmt, "--route", name)[1].strip()
                         for name in ("log-sigmoid", "shift-invariance"))
        code, out, _ = run(capsys, fmt, *routes)
        assert code == 0
        assert out.count(first) == out.count(second) == 1
        assert out.index(first) < out.index(second)
        _, backward, _ = run(capsys, fmt, "--route", "shift-invariance", "--route", "log-sigmoid")
        assert backward.index(second) < backward.index(first)


def test_a_misspelt_route_fails_before_any_work(capsys, monkeypatch):
    def no_work(*_):
        raise AssertionError("nothing should be built or checked")
    monkeypatch.setattr("derive.derivations.build", no_work)
    code, out, err = run(capsys, "text", "--route", "chain", "logsumexq")
    assert (code, out) == (2, "")
    assert one_line(err) == "derive: error: unknown derivation 'logsumexq'; did you mean 'logsumexp'?"


@pytest.mark.parametrize("argv", [["latex", "--route", "chain", "--document"],
                                  ["markdown", "--route", "log-sigmoid"],
                                  ["text", "--route", "log-sigmoid", "chain"], ["code"]])
def test_output_file_holds_exactly_what_stdout_would(capsys, tmp_path, argv):
    code, printed, _ = run(capsys, *argv)
    assert code == 0
    target = tmp_path / "out.txt"
    code, out, err = run(capsys, *argv, "--output", target)
    assert (code, out, err) == (0, "", "")
    assert target.read_text(encoding="utf-8") == printed
    assert os.listdir(tmp_path) == ["out.txt"]  # no temporary file left


def test_output_file_through_a_link_keeps_the_link(capsys, tmp_path):
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real)
    assert run(capsys, "markdown", "--route", "log-sigmoid", "--output", link)[0] == 0
    assert link.is_symlink() and "$$" in real.read_text(encoding="utf-8")


@pytest.mark.parametrize("where, message", [
    ("missing/out.tex", "cannot write {p}: folder {p.parent} does not exist"),
    ("a-file/out.tex", "cannot write {p}: {p.parent} is not a folder"),
    ("a-folder", "cannot write {p}: it is a folder"),
])
def test_output_file_that_cannot_be_written_is_one_line_exit_1(capsys, tmp_path, where, message):
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    before = sorted(os.listdir(tmp_path))
    target = tmp_path / where
    code, out, err = run(capsys, "latex", "--route", "log-sigmoid", "--output", target)
    assert (code, out) == (1, "")
    assert one_line(err) == "derive: error: " + message.format(p=target)
    assert sorted(os.listdir(tmp_path)) == before  # nothing created


def test_output_file_keeps_its_old_content_when_the_write_fails(capsys, tmp_path, monkeypatch):
    target = tmp_path / "derivations.tex"
    assert run(capsys, "latex", "--route", "log-sigmoid", "--output", target)[0] == 0  # warm
    target.write_text("old")

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "replace", full_disk)
    code, out, err = run(capsys, "latex", "--route", "log-sigmoid", "--output", target)
    assert (code, out) == (1, "")
    assert one_line(err) == f"derive: error: cannot write {target}: No space left on device"
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["derivations.tex"]


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_output_file_in_a_read_only_folder(capsys, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        code, _, err = run(capsys, "code", "--output", folder / "m.py")
    finally:
        folder.chmod(0o755)
    assert code == 1 and one_line(err) == f"derive: error: cannot write {folder / 'm.py'}: Permission denied"


# -- 6. build --output --------------------------------------------------------------------------

def test_build_creates_the_missing_final_folder_and_says_so(capsys, tmp_path):
    target = tmp_path / "new"
    code, out, err = run(capsys, "build", "--output", target)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"created {target}"
    assert lines[1:] == [f"wrote {target / name}" for name in build.artifacts()]
    code, out, _ = run(capsys, "build", "--output", target)  # exists now: nothing to say
    assert code == 0 and not out.startswith("created")


def test_build_refuses_a_missing_parent(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("derive.build.artifacts", lambda: pytest.fail("refused before any work"))
    target = tmp_path / "a" / "b"
    code, out, err = run(capsys, "build", "--output", target)
    assert (code, out) == (1, "")
    assert one_line(err) == f"derive: error: cannot create {target}: folder {target.parent} does not exist"
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("check", [[], ["--check"]])
def test_build_into_an_existing_file(capsys, tmp_path, check):
    target = tmp_path / "file"
    target.write_text("mine")
    code, out, err = run(capsys, "build", *check, "--output", target)
    assert (code, out) == (1, "")
    assert str(target) in one_line(err) and "it is a file, not a folder" in err
    assert target.read_text() == "mine"


def test_build_that_cannot_write_names_the_file(capsys, tmp_path, monkeypatch):
    def refused(path, text):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    monkeypatch.setattr("derive.build.write_atomically", refused)
    code, out, err = run(capsys, "build", "--output", tmp_path)
    assert (code, out) == (1, "")
    assert one_line(err) == (f"derive: error: cannot write {tmp_path / 'softmax_cross_entropy.py'}: "
                             "Permission denied")


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_build_into_a_read_only_folder(capsys, tmp_path):
    tmp_path.chmod(0o555)
    try:
        code, _, err = run(capsys, "build", "--output", tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert code == 1 and "Permission denied" in one_line(err) and str(tmp_path) in err


# -- 3. stdout that fails: closed pipe, full disk, ASCII only -----------------------------------

class _FullDisk(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _ClosedPipe(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


@pytest.mark.parametrize("argv", [["list"], ["--version"], ["eval", "--logits", "1", "2", "--label", "0"]])
def test_stdout_failures_in_process(capsys, monkeypatch, argv):
    monkeypatch.setattr(sys, "stdout", _FullDisk())
    assert main(argv) == 1
    assert one_line(capsys.readouterr().err) == "derive: error: cannot write the output: No space left on device"
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(argv) == CLOSED_PIPE == 141
    assert capsys.readouterr().err == ""


def test_ascii_stdout_gets_nothing_half_printed(capsys, monkeypatch):
    ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stdout", ascii_out)
    assert main(["list"]) == 1
    assert one_line(capsys.readouterr().err) == ("derive: error: stdout's encoding (ascii) cannot "
                                                 "show the output; set PYTHONIOENCODING=utf-8")
    ascii_out.flush()
    assert ascii_out.buffer.getvalue() == b""
    assert main(["eval", "--logits", "1", "2", "--label", "0"]) == 0  # ASCII output is fine
    ascii_out.flush()
    assert ascii_out.buffer.getvalue().startswith(b"softmax   0.2689 0.7311\n")


@pytest.mark.parametrize("argv", [["list"], ["code"]])
def test_a_full_disk(warm, argv):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    for buffering in ("1", None):
        with open("/dev/full", "w") as full:
            done = cli(*argv, stdout=full, stderr=subprocess.PIPE,
                       env=environ(PYTHONUNBUFFERED=buffering))
        assert done.returncode == 1
        assert one_line(done.stderr) == "derive: error: cannot write the output: No space left on device"


def _into_a_closed_pipe(argv, env):
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the child writes
    try:
        return cli(*argv, stdout=write, stderr=subprocess.PIPE, env=env)
    finally:
        os.close(write)


@pytest.mark.parametrize("argv", [["list"], ["--help"], ["check", "--route", "log-sigmoid"]])
@pytest.mark.parametrize("buffering", ["1", None], ids=["unbuffered", "buffered"])
def test_a_closed_pipe_is_a_quiet_exit_141(warm, argv, buffering):
    done = _into_a_closed_pipe(argv, environ(PYTHONUNBUFFERED=buffering))
    assert (done.returncode, done.stderr) == (CLOSED_PIPE, "")


def test_head_closing_the_pipe_early():
    done = subprocess.run(f"{sys.executable} -m derive list | head -c 10 >/dev/null; "
                          "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash",
                          capture_output=True, text=True, env=environ(PYTHONUNBUFFERED=None))
    assert done.stderr == "" and done.stdout.strip() in ("0", str(CLOSED_PIPE))


def test_ascii_stdout_in_a_child(warm):
    done = cli("text", "--route", "log-sigmoid", env=environ(PYTHONIOENCODING="ascii"))
    assert (done.returncode, done.stdout) == (1, "")
    assert one_line(done.stderr) == ("derive: error: stdout's encoding (ascii) cannot show the "
                                     "output; set PYTHONIOENCODING=utf-8")
    done = cli("text", "--route", "log-sigmoid", env=environ(PYTHONIOENCODING="ascii:replace"))
    assert done.returncode == 0 and "      ? log of a quotient" in done.stdout  # chosen by the user


# -- 3. Ctrl-C ---------------------------------------------------------------------------------

def test_interrupt_in_process(capsys, monkeypatch):
    def interrupted(name):
        raise KeyboardInterrupt
    monkeypatch.setattr("derive.derivations.build", interrupted)
    try:
        code, out, err = run(capsys, "check", "--route", "chain")
    except KeyboardInterrupt:  # would stop the whole test run: fail this test instead
        pytest.fail("KeyboardInterrupt escaped main()")
    assert (code, out) == (INTERRUPTED, "") and one_line(err) == "derive: interrupted"


def test_ctrl_c_during_the_first_check(tmp_path):
    cache = tmp_path / "cache"
    sent = []

    def interrupt_once_checking(proc, seen):
        if not sent and b"checking" in seen:
            time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            sent.append(True)

    code, out, terminal = under_a_terminal(["text"], environ(DERIVE_CACHE_DIR=cache), tmp_path,
                                           interrupt_once_checking)
    assert sent and code == INTERRUPTED == 130 and out == ""
    assert "Traceback" not in terminal
    assert terminal.rstrip("\r\n").endswith("\rderive: interrupted")
    assert not list(cache.glob(".checked-*"))  # no temporary file left behind


# -- 1. progress on a terminal ---------------------------------------------------------------

def test_progress_on_a_terminal_during_the_first_check(tmp_path):
    env = environ(DERIVE_CACHE_DIR=tmp_path / "cache")
    code, out, terminal = under_a_terminal(["text", "--route", "chain", "log-sigmoid"], env, tmp_path)
    assert code == 0 and "q_k - y_k" in out
    shown = [part.strip() for part in terminal.split("\r") if part.strip()]
    assert shown == ["checking softmax-jacobian (1/3)…", "checking chain (2/3)…",
                     "checking log-sigmoid (3/3)…"]
    assert terminal.endswith("\r") and terminal.split("\r")[-2].strip() == ""  # cleared
    code, out, terminal = under_a_terminal(["text", "--route", "chain"], env, tmp_path)
    assert code == 0 and terminal == ""  # from the cache: nothing is checked, nothing shown


def test_progress_of_derive_check(tmp_path, warm):
    code, out, terminal = under_a_terminal(["check", "--route", "log-sigmoid", "shift-invariance"],
                                           environ(), tmp_path)
    assert code == 0 and len(out.splitlines()) == 2
    assert [p.strip() for p in terminal.split("\r") if p.strip()] == [
        "checking log-sigmoid (1/2)…", "checking shift-invariance (2/2)…"]


@pytest.mark.parametrize("argv", [["--quiet", "text", "--route", "log-sigmoid"],
                                  ["text", "--route", "log-sigmoid", "-q"],
                                  ["eval", "--quiet", "--logits", "1", "2", "--label", "0"]])
def test_quiet_hides_the_progress(tmp_path, argv):
    code, out, terminal = under_a_terminal(argv, environ(DERIVE_CACHE_DIR=tmp_path / "c"), tmp_path)
    assert code == 0 and out and terminal == ""


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path):
    done = cli("text", "--route", "chain", env=environ(DERIVE_CACHE_DIR=tmp_path / "cache"))
    assert done.returncode == 0 and done.stderr == "" and "q_k - y_k" in done.stdout
    assert (tmp_path / "cache" / "checked.txt").exists()  # it did check


# -- 4. a cache that cannot be written ----------------------------------------------------------

def test_a_cache_folder_that_is_a_file_is_said_once(tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("")
    done = cli("text", "--route", "chain", "log-sigmoid", env=environ(DERIVE_CACHE_DIR=cache))
    assert done.returncode == 0 and "q_k - y_k" in done.stdout
    assert one_line(done.stderr) == (f"derive: warning: cannot write the cache of passed checks in "
                                     f"{cache} (it is not a folder); every run will check again")


def test_a_cache_folder_under_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    cache = tmp_path / "file" / "cache"
    done = cli("markdown", "--route", "log-sigmoid", env=environ(DERIVE_CACHE_DIR=cache))
    assert done.returncode == 0 and "$$" in done.stdout
    assert one_line(done.stderr) == (f"derive: warning: cannot write the cache of passed checks in "
                                     f"{cache} (not a directory); every run will check again")


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_a_read_only_cache_folder(tmp_path):
    tmp_path.chmod(0o555)
    try:
        done = cli("text", "--route", "log-sigmoid", env=environ(DERIVE_CACHE_DIR=tmp_path / "c"))
    finally:
        tmp_path.chmod(0o755)
    assert done.returncode == 0 and "permission denied" in one_line(done.stderr)


def test_the_library_is_silent_and_a_front_end_is_told_once(tmp_path, monkeypatch):
    from derive.check import cache
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DERIVE_CACHE_DIR", str(tmp_path / "file"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache._remember("a")
    assert caught == []
    told = []
    cache.on_warning(told.append)
    try:
        cache._remember("a")
        cache._remember("b")
    finally:
        cache.on_warning(None)
    assert told == [
        f"cannot write the cache of passed checks in {tmp_path / 'file'} (it is not a folder); "
        "every run will check again"]


# -- what the CLI imports -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["list"], ["--version"], ["--help"], ["eval", "--help"], [],
                                  ["text", "--route", "chian"], ["eval", "--digits", "-1"]])
def test_commands_that_need_no_sympy_do_not_import_it(argv):
    code = ("import sys; from derive.cli import main; status = main(%r); "
            "assert 'sympy' not in sys.modules, 'sympy imported'; "
            "assert 'derive.check.cache' not in sys.modules" % (argv,))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ(), timeout=120)
    assert done.returncode == 0, done.stderr


# -- every command, three ways -----------------------------------------------------------------

EVERY_COMMAND = [
    ["latex", "--route", "log-sigmoid"],
    ["markdown", "--route", "log-sigmoid"],
    ["text", "--route", "log-sigmoid"],
    ["check", "--route", "log-sigmoid"],
    ["list"],
    ["eval", "--logits", "1", "-inf", "-2e3", "--label", "0"],
    ["code"],
    ["build", "--check", "--output", "{tmp}"],
    ["build", "--output", "{tmp}/new"],
    ["--version"],
    ["--help"],
]
USES_THE_CACHE = {"latex", "markdown", "text", "eval", "code", "build"}


@pytest.mark.parametrize("argv", EVERY_COMMAND, ids=lambda argv: " ".join(argv[:2]))
@pytest.mark.parametrize("how", ["ascii", "closed-stdout", "unwritable-cache"])
def test_every_command_three_ways_never_a_traceback(warm, tmp_path, how, argv):
    argv = [a.format(tmp=tmp_path) for a in argv]
    if how == "ascii":
        done = cli(*argv, env=environ(PYTHONIOENCODING="ascii"))
    elif how == "closed-stdout":
        done = _into_a_closed_pipe(argv, environ(PYTHONUNBUFFERED=None))
    else:
        (tmp_path / "cache").write_text("")
        done = cli(*argv, env=environ(DERIVE_CACHE_DIR=tmp_path / "cache"))
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    stale = argv[:2] == ["build", "--check"]
    if how == "ascii":
        assert done.returncode in (0, 1) and len(lines) <= 1
        if done.returncode == 1 and not stale:
            assert done.stdout == "" and "stdout's encoding (ascii)" in lines[0]
    elif how == "closed-stdout":
        assert (done.returncode, done.stderr) == (CLOSED_PIPE, "")
    else:
        assert done.returncode == (1 if stale else 0)
        warning = [line for line in lines if line.startswith("derive: warning: cannot write the cache")]
        assert len(warning) == (argv[0] in USES_THE_CACHE)
        assert len(lines) == len(warning) + stale
