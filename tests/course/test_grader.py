"""The grader against hostile solutions: it runs each in a child process with a
time limit, judges in its own process, and reports every failure in one line.

Each test grades a planted file through the command itself, as a student
would (``python -m exercises.grade NAME --file PATH``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hostile import ctrl_c_as_at_a_terminal

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from exercises import grade  # noqa: E402
from exercises.registry import EXERCISES  # noqa: E402
from exercises.wire import FrameReader, Opaque, WireError, frame, from_tree, to_tree  # noqa: E402

EPOCH = "60000 * 2 * (784 * 128 * 2 + 128 * 10 * 3)"  # the right epoch_flops


def env(*front: Path) -> dict[str, str]:
    """The environment with ``front`` (and the repository) first on the path."""
    paths = [str(p) for p in (*front, ROOT)]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def grade_cmd(*args: str, cwd: Path = ROOT, timeout: float = 300):
    """Run ``python -m exercises.grade ARGS``; the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "exercises.grade", *args],
        cwd=cwd,
        env=env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def planted(tmp_path: Path, source: str, name: str = "planted.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def check_line(out: str, description: str) -> str:
    """The one line the grader printed for a check."""
    lines = [line for line in out.splitlines() if description in line]
    assert len(lines) == 1, out
    return lines[0]


def test_a_looping_solution_is_stopped_and_the_rest_still_graded(tmp_path):
    hang = planted(
        tmp_path,
        """
        import numpy as np

        def leaky_relu_forward(x, alpha=0.01):
            return np.where(x > 0, x, alpha * x), (x > 0, alpha)

        def leaky_relu_backward(dout, cache):
            while True: x = 1
        """,
    )
    done = grade_cmd("leaky_relu", "--file", str(hang), "--time-limit", "2")
    assert done.returncode == 1
    line = check_line(done.stdout, "backward passes the gradient checker")
    assert line.startswith("  FAIL  ") and "stopped after 2 s" in line
    assert "planted.py line 8: while True: x = 1 (an endless loop?)" in line
    assert "PASS  forward values and dtype" in done.stdout  # graded before it
    assert "FAIL  derivative alpha at exactly 0: stopped after 2 s" in done.stdout
    assert "1 of 3 checks pass: not yet" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_a_file_looping_at_import_is_stopped(tmp_path):
    loop = planted(tmp_path, "while True:\n    pass\n")
    done = grade_cmd("flops", "--file", str(loop), "--time-limit", "2")
    assert done.returncode == 1
    line = check_line(done.stdout, "could not be imported")
    assert line == (
        f"  FAIL  {loop} could not be imported: it ran past the time limit of 2 s, "
        f"in {loop} line 1: while True:"
    ) or line.endswith(f"in {loop} line 2: pass")


def test_sys_exit_at_import_is_a_failure_in_one_line(tmp_path):
    leaver = planted(tmp_path, "import sys\nsys.exit(0)\n")
    done = grade_cmd("flops", "--file", str(leaver))
    assert done.returncode == 1
    assert done.stdout.splitlines()[1:] == [
        f"  FAIL  {leaver} could not be imported: your code called sys.exit(0) "
        f"(at {leaver}:2: sys.exit(0))",
        "0 of 2 checks pass: not yet",
        "",
    ]


@pytest.mark.parametrize(
    "leave, said",
    [
        ("sys.exit(0)", "your code called sys.exit(0) (at"),
        ("os._exit(0)", "your code ended the grading process (exit status 0)"),
        ("os.kill(os.getpid(), 9)", "ended the grading process (killed by SIGKILL)"),
    ],
    ids=["sys.exit", "os._exit", "kill"],
)
def test_leaving_inside_a_function_fails_that_check_only(tmp_path, leave, said):
    leaver = planted(
        tmp_path,
        f"""
        import os, sys

        def step_flops(sizes, batch_size):
            {leave}

        def epoch_flops(sizes, n, batch_size):
            return {EPOCH}
        """,
    )
    done = grade_cmd("flops", "--file", str(leaver))
    assert done.returncode == 1
    line = check_line(done.stdout, "FLOPs of one step")
    assert line.startswith("  FAIL  ") and said in line
    assert "PASS  FLOPs of one epoch" in done.stdout
    assert "1 of 2 checks pass" in done.stdout


def test_raising_and_nan_are_failures_with_where_and_what(tmp_path):
    wrong = planted(
        tmp_path,
        """
        import numpy as np

        def logsumexp(z):
            print("debugging", z.shape)
            return np.full(len(z), np.nan)

        def cross_entropy(logits, labels):
            return {}["missing"]
        """,
    )
    done = grade_cmd("logsumexp", "--file", str(wrong))
    assert done.returncode == 1
    assert "FAIL  logsumexp values: logsumexp(z) contains NaN at [0] (6 entries)" in (
        done.stdout
    )
    line = check_line(done.stdout, "cross_entropy and its gradient check")
    assert "raised KeyError: 'missing' (at" in line
    assert 'return {}["missing"])' in line
    assert "    | debugging (6, 10)" in done.stdout  # its own output, marked


def test_replacing_the_checks_in_its_process_changes_nothing(tmp_path):
    cheat = planted(
        tmp_path,
        """
        import exercises.checks
        import exercises.checks.core
        import exercises.checks.flops
        import exercises.grade

        exercises.checks.expect = lambda *a: None
        exercises.checks.core.expect = lambda *a: None
        exercises.checks.flops.expect = lambda *a: None
        exercises.checks.flops.CHECKS[0].__dict__["judge"] = lambda *a: "forged"
        exercises.grade.judged = lambda *a: ("PASS", "forged")

        def step_flops(sizes, batch_size):
            return 0

        def epoch_flops(sizes, n, batch_size):
            return 0
        """,
    )
    done = grade_cmd("flops", "--file", str(cheat))
    assert done.returncode == 1
    assert "FAIL  FLOPs of one step: step_flops([784, 128, 10], 256) = 0" in done.stdout
    assert "FAIL  FLOPs of one epoch" in done.stdout
    assert "forged" not in done.stdout


def copy_of_exercises(tmp_path: Path) -> Path:
    """A copy of exercises/ (stubs as the student's files) to be damaged."""
    shutil.copytree(
        ROOT / "exercises",
        tmp_path / "exercises",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


def test_grade_all_survives_a_solution_that_rewrites_and_deletes_the_grader(
    tmp_path,
):
    """flops.py rewrites every check to pass and deletes the grader's files."""
    root = copy_of_exercises(tmp_path)
    (root / "exercises" / "flops.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            here = Path(__file__).parent
            forged = (
                "from exercises.checks.core import Check\\n"
                "CHECKS = tuple(Check('forged', lambda m: 0, lambda v: 'forged')"
                " for _ in range(9))\\n"
            )
            for path in (here / "checks").glob("*.py"):
                if path.name not in ("__init__.py", "core.py"):
                    path.write_text(forged)
            for name in ("grade.py", "runner.py", "wire.py", "registry.py"):
                (here / name).unlink()
            for path in (here / "solutions").glob("*.py"):
                path.unlink()

            def step_flops(sizes, batch_size):
                return 0

            def epoch_flops(sizes, n, batch_size):
                return 0
            """
        )
    )
    done = grade_cmd("all", cwd=root, timeout=600)
    assert done.returncode == 1
    assert "PASS" not in done.stdout and "forged" not in done.stdout
    assert "FAIL  FLOPs of one step: step_flops([784, 128, 10], 256) = 0" in done.stdout
    tally = done.stdout.strip().splitlines()[-1]
    count = len(EXERCISES)
    assert tally.startswith(f"tally: 0 of {count} exercises pass; not yet: idx_header")
    later = list(EXERCISES)[list(EXERCISES).index("flops") + 1 :]
    assert later[-2:] == ["augmentation", "conv_backward"]
    assert tally.endswith(
        ", flops; not graded: "
        + ", ".join(f"{name} (the grader could not start)" for name in later)
    )
    assert (
        "SKIP  not graded: the grader's child process ended (exit status 1): "
        "ModuleNotFoundError: No module named 'exercises.registry'" in done.stdout
    )
    assert not (root / "exercises" / "grade.py").exists()  # it did delete them
    assert "Traceback" not in done.stdout + done.stderr


def grade_a_looping_solution(tmp_path, **popen) -> tuple[subprocess.Popen, Path]:
    """Start the grader on a solution that writes its pid, then loops for ever;
    return once the solution runs: the grader's process and the pid's file."""
    pid_file = tmp_path / "pid"
    hang = planted(
        tmp_path,
        f"""
        import os
        from pathlib import Path

        def step_flops(sizes, batch_size):
            Path({str(pid_file)!r}).write_text(str(os.getpid()))
            while True:
                pass
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "exercises.grade", "flops", "--file", str(hang)],
        cwd=ROOT,
        env=env(),
        **popen,
    )
    deadline = time.monotonic() + 120
    while not pid_file.is_file() or not pid_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the looping solution did not start")
        time.sleep(0.1)
    return proc, pid_file


def test_a_killed_grader_takes_the_looping_solution_with_it(tmp_path):
    """SIGKILL cannot be caught, so the grader cannot stop its child; the
    child, running a solution that loops for ever, ends by itself within a
    few seconds of its parent's death instead of spinning on."""
    proc, pid_file = grade_a_looping_solution(
        tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    proc.kill()
    proc.wait()
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return  # gone
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the solution's process outlived its killed grader by 10 s")


@pytest.mark.parametrize(
    "stop, status, said",
    [
        (signal.SIGINT, 130, "interrupted (Ctrl-C); grading stopped"),
        (signal.SIGTERM, 143, "terminated; grading stopped"),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_ctrl_c_prints_one_line_and_ends_the_solution(tmp_path, stop, status, said):
    proc, pid_file = grade_a_looping_solution(
        tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_as_at_a_terminal,  # also under `pytest &`
    )
    try:
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status
    assert err.splitlines() == [f"python -m exercises.grade: {said}"]
    assert "Traceback" not in out
    with pytest.raises(ProcessLookupError):  # the looping child is gone too
        os.kill(int(pid_file.read_text()), 0)


@pytest.mark.tf
@pytest.mark.slow
def test_no_library_warnings_in_the_output():
    pytest.importorskip("tensorflow")
    done = grade_cmd("tape_gradients", "--solution", "--time-limit", "300")
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines[1].startswith("  PASS  tape gradients equal the engine's")
    assert lines[2:] == ["1 of 1 checks pass: all checks pass", ""]
    assert done.stderr == ""


def test_no_name_says_how_to_grade_one(capsys):
    assert grade.main([]) == 2
    out = capsys.readouterr().out
    assert "leaky_relu" in out
    assert "grade one with `python -m exercises.grade NAME`" in out


def test_a_bad_command_line_is_one_line(capsys):
    assert grade.main(["leaky_rel"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "python -m exercises.grade: no exercise named 'leaky_rel' "
        "(did you mean leaky_relu?); --list shows them all"
    ]
    with pytest.raises(SystemExit) as stop:
        grade.main(["flops", "--time-limit", "soon"])
    assert stop.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_an_exercise_not_graded_is_not_a_pass(monkeypatch, capsys):
    monkeypatch.setattr(grade, "missing_needs", lambda exercise: ["tensorflow"])
    assert grade.main(["tape_gradients", "--solution"]) == 1
    out = capsys.readouterr().out
    assert "SKIP  not graded: needs tensorflow" in out


def test_tally_names_what_failed_and_what_was_not_graded(capsys):
    results = {
        "forward": grade.Result(2, 2),
        "flops": grade.Result(1, 2),
        "tape_gradients": grade.Result(0, 0, graded=False, reason="needs tensorflow"),
    }
    grade.tally(results, sys.stdout)
    assert capsys.readouterr().out == (
        "tally: 1 of 3 exercises pass; not yet: flops; "
        "not graded: tape_gradients (needs tensorflow)\n"
    )


def test_what_comes_back_is_data_and_keeps_its_types():
    value = {
        "a": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": (1, 2.5, None, "x", True, np.int64(7)),
        "c": [np.nan, float("inf")],
        "d": object(),
    }
    back = from_tree(to_tree(value))
    assert back["a"].dtype == np.float32 and back["a"].tolist() == value["a"].tolist()
    assert back["b"][:5] == (1, 2.5, None, "x", True) and back["b"][5] == 7
    assert np.isnan(back["c"][0]) and back["c"][1] == float("inf")
    assert isinstance(back["d"], Opaque) and back["d"].type_name == "object"


@pytest.mark.parametrize(
    "tree",
    [
        {"array": ["|O", [1], ""]},  # objects: a pickle in disguise
        {"array": ["<f8", [2], "AAAA"]},  # bytes that do not fill the shape
        {"array": ["<f8", [0, 10**30], ""]},  # a shape no array can have
        {"pickle": "gASV"},
        {"list": [1], "tuple": [2]},
        {"dict": [[1, 2]]},
    ],
)
def test_a_forged_message_is_refused(tree):
    with pytest.raises(WireError):
        from_tree(tree)


def test_a_frame_too_large_or_not_json_is_refused():
    with pytest.raises(WireError):
        FrameReader().feed(b"\xff\xff\xff\xff")
    with pytest.raises(WireError):
        FrameReader().feed(frame({"a": 1})[:4] + b"{not json")
    assert FrameReader().feed(frame({"a": 1}) + frame({"b": 2})) == [{"a": 1}, {"b": 2}]


def test_the_stub_output_quoted_in_the_docs_is_what_the_grader_prints():
    page = (ROOT / "docs" / "exercises.md").read_text()
    quoted = page.split("```text\n", 1)[1].split("```", 1)[0].strip()
    done = grade_cmd("leaky_relu")
    assert done.returncode == 1
    assert done.stdout.strip() == quoted


def test_list_names_every_exercise(capsys):
    assert grade.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == len(EXERCISES)
    assert "lecture 11  augmentation" in out
