"""Every command the README shows runs, and exits 0, in a fresh copy of the project.

The README's command blocks (```bash blocks, and ``$ `` lines or lone
``python ...`` lines in plain blocks) are read from README.md itself, so a
command added there is run here too. Each variant gets a fresh copy of the
project (the files git tracks, and new ones it does not ignore) and runs the
blocks in the README's order inside it, as a user would in a new clone. The
packages themselves (``PACKAGES``) are not copied but imported from the
checkout under test, as an editable install does, so Numba's compiled
kernels are not compiled again for each copy:

* ``as-written``: every command exactly as the README prints it (20 epochs
  where it says so), so marked ``slow``;
* ``quick``: the same commands with one epoch for those that train
  (``QUICK``), in the quick subset; the few still slow in one epoch
  (``ONLY_AS_WRITTEN``) run only as written.

The README's placeholders stand for the user's own files, which the test
makes first (``PLACEHOLDERS``); the commands it does not run are in
``NOT_RUN``, each with the reason, and are reported as skips. A command runs
after the earlier commands of its block (an export before the predict that
reads its file), whichever test asks first.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TIMEOUT = 1800  # seconds per command; the slowest, 20 eager TensorFlow epochs

# Commands not run here, by a regular expression on the command, and why.
NOT_RUN = [
    (
        r"^pip install\b",
        "installs packages: the suite runs where the extras are installed",
    ),
    (r"^python -m pytest$", "the whole test suite, of which this test is one"),
    (
        r"^PYTHONPATH=tests/fakegpu python -m pytest -m gpu$",
        "part of the suite: .ci/run runs it after the suite",
    ),
    (
        r"^python -m backprop\.explore\b",
        "a web server that runs until stopped "
        "(tests/app/test_explorer_*.py serve the page and drive it)",
    ),
    (
        r"^mkdocs serve\b",
        "a web server that runs until stopped (tests/course builds the site)",
    ),
    (
        r"^jupyter lab\b",
        "a notebook server that runs until stopped (tests/course runs the notebooks)",
    ),
]
# Commands whose full run would take most of the suite's time on 2 cores: the
# as-written variant leaves them to the quick one (one epoch, same command).
ONLY_QUICK = {
    "python -m backprop.train --model cnn": "20 LeNet-5 epochs take over 2 "
    "minutes on 2 cores",
}
# Commands that need an extra beyond the core, and the modules they import.
NEEDS = [
    (r"^python -m tf_reference\b", ("tensorflow",), "TensorFlow (the tf extra)"),
    (r"backprop\.export|\.onnx\b", ("onnx", "onnxruntime"), "the onnx extra"),
]
# The README's names for the user's own files; the test makes each in the copy.
PLACEHOLDERS = {
    "runs/RUN": "a run folder of the user's: one epoch of --hidden 32 trained there",
    "my-digit.jpg": "a photo of a digit: an MNIST test digit, dark on light, as JPEG",
}
# The quick variant's changes: flags added to the commands that start so
# (argparse takes the last of a repeated flag), or, for a command with no
# short form, why it runs only as written.
QUICK = {
    "python -m backprop.train": "--epochs 1",
    "python -m tf_reference.train": "--epochs 1",
}
ONLY_AS_WRITTEN = {
    "python ood/measure.py": "reads 3,237 images through predict (minutes)",
    "python -m backprop.crossval": "even one epoch of two folds trains three models",
    "python -m backprop.train --augment": "its one epoch still compiles and distorts",
}
VARIANTS = ("quick", "as-written")
PACKAGES = ("backprop", "tf_reference")  # imported from ROOT, not copied


@dataclass(frozen=True)
class Block:
    """A command block of the README: its first line's number, its commands."""

    line: int
    commands: tuple[str, ...]


def command_blocks(text: str) -> list[Block]:
    """The README's command blocks, in order.

    A ```bash block is commands, one per line (``#`` comments dropped; ``&&``
    splits a line into commands that run one after the other). In a plain
    ``````` block, the lines that start with ``$ `` are commands (the others
    their output), and a block whose lines all start with ``python `` is
    commands too. Other blocks (```python, a file tree) are not commands.
    """
    blocks, lines, number = [], text.splitlines(), 0
    while number < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[number])
        if not fence:
            number += 1
            continue
        start, body = number + 1, []
        number += 1
        while number < len(lines) and not lines[number].startswith("```"):
            body.append(lines[number])
            number += 1
        number += 1
        body = [line for line in body if line.strip()]
        language = fence.group(1)
        if language in ("bash", "sh", "shell", "console"):
            chosen = [line.removeprefix("$ ") for line in body]
        elif language == "" and any(line.startswith("$ ") for line in body):
            chosen = [line[2:] for line in body if line.startswith("$ ")]
        elif (
            language == "" and body and all(line.startswith("python ") for line in body)
        ):
            chosen = body
        else:
            continue
        commands = [
            shlex.join(shlex.split(part, comments=True))
            for line in chosen
            for part in line.split("&&")
            if shlex.split(part, comments=True)
        ]
        blocks.append(Block(start, tuple(commands)))
    return blocks


BLOCKS = command_blocks(README.read_text())


def why_not_run(command: str) -> str | None:
    """The reason a command is not run, or None."""
    for pattern, reason in NOT_RUN:
        if re.search(pattern, command):
            return reason
    return None


def quick(command: str) -> str:
    """The quick variant's command: training cut to one epoch (``QUICK``)."""
    for start, flags in QUICK.items():
        if command.startswith(start) and "--help" not in command:
            return f"{command} {flags}"
    return command


def project_files() -> list[Path]:
    """The project's files as a clone has them: tracked, or new and not ignored."""
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        listed = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        names = [Path(name) for name in listed.decode().split("\0") if name]
    else:
        skip = {".git", "runs", "site", "build", "dist", "__pycache__"}
        names = [
            path.relative_to(ROOT)
            for path in ROOT.rglob("*")
            if not skip & set(path.relative_to(ROOT).parts)
        ]
    return [
        name
        for name in names
        if name.parts[0] not in PACKAGES and (ROOT / name).is_file()
    ]


def environment(copy: Path) -> dict[str, str]:
    """The commands' environment: this Python first on PATH, the checkout's
    packages."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env["PYTHONPATH"] = str(ROOT)
    env["MPLBACKEND"] = "Agg"
    return env


def run(command: str, copy: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def make_placeholders(copy: Path) -> None:
    """The user's own files that the README's commands name (``PLACEHOLDERS``)."""
    from PIL import Image

    from backprop.data import load_pixels

    train = (
        "python -m backprop.train --epochs 1 --hidden 32 --kernels reference "
        "--quiet --out runs/RUN"
    )
    done = run(train, copy)
    assert done.returncode == 0, done.stderr[-2000:]
    _, (pixels, _) = load_pixels("mnist", None, {})
    digit = 255 - pixels[0].reshape(28, 28)  # (28, 28) uint8, dark ink on light
    Image.fromarray(digit).resize((112, 112)).save(copy / "my-digit.jpg", quality=90)


class Clone:
    """A fresh copy of the project, and the README commands run in it so far."""

    def __init__(self, folder: Path, variant: str) -> None:
        self.folder, self.variant = folder, variant
        self.ran: set[tuple[int, int]] = set()

    def run_block_up_to(self, block: Block, index: int) -> None:
        """Run a block's command ``index`` (from 0), after its earlier ones."""
        for i, command in enumerate(block.commands[: index + 1]):
            if (block.line, i) in self.ran or reason_to_skip(command, self.variant):
                continue
            if self.variant == "quick":
                command = quick(command)
            done = run(command, self.folder)
            self.ran.add((block.line, i))
            assert "Traceback" not in done.stderr, done.stderr[-2000:]
            assert done.returncode == 0, (
                f"README line {block.line}: {command} exited {done.returncode}:\n"
                f"{done.stderr[-2000:]}"
            )


@pytest.fixture(scope="module")
def clones(tmp_path_factory):
    """One fresh copy of the project per variant, made when first asked for."""
    made: dict[str, Clone] = {}

    def clone_for(variant: str) -> Clone:
        if variant not in made:
            target = tmp_path_factory.mktemp("clone") / "backprop"
            for name in project_files():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, target / name)
            make_placeholders(target)
            made[variant] = Clone(target, variant)
        return made[variant]

    return clone_for


def reason_to_skip(command: str, variant: str) -> str | None:
    """Why a command is not run in this variant (``NOT_RUN``, ``ONLY_AS_WRITTEN``,
    a missing extra), or None."""
    import importlib.util

    reason = why_not_run(command)
    if reason:
        return reason
    for pattern, modules, extra in NEEDS:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        if re.search(pattern, command) and missing:
            return f"needs {extra} ({', '.join(missing)} is not installed)"
    if variant == "quick":
        for start, why in ONLY_AS_WRITTEN.items():
            if command.startswith(start):
                return f"{why}; the slow variant runs it as written"
    if variant == "as-written":
        for start, why in ONLY_QUICK.items():
            if command.startswith(start):
                return f"{why}; the quick variant runs it for one epoch"
    return None


def params():
    """One test per variant and command, in the README's order."""
    for variant in VARIANTS:
        for block in BLOCKS:
            for i, command in enumerate(block.commands):
                marks = []
                tf = command.startswith("python -m tf_reference")
                if tf:
                    marks.append(pytest.mark.tf)
                cnn = command.startswith("python -m backprop.train --model cnn")
                # TensorFlow: 30 s for one epoch; a CNN's one epoch: about 12 s
                if variant == "as-written" or tf or cnn:
                    marks.append(pytest.mark.slow)
                name = f"{variant}-line{block.line}-{i + 1}"
                yield pytest.param(variant, block, i, marks=marks, id=name)


def test_the_readme_has_command_blocks():
    assert len(BLOCKS) >= 8
    commands = [c for block in BLOCKS for c in block.commands]
    assert "python -m backprop.train" in commands
    assert "python -m backprop.train --help" in commands  # a plain block
    assert any("--multi --show" in c for c in commands)  # a $ line
    assert not any(c.startswith("#") or "&&" in c for c in commands)


def test_every_reason_not_to_run_is_used():
    commands = [c for block in BLOCKS for c in block.commands]
    for pattern, reason in NOT_RUN:
        assert any(re.search(pattern, c) for c in commands), (pattern, reason)
    for placeholder in PLACEHOLDERS:
        assert any(placeholder in c for c in commands), placeholder
    for start in [*QUICK, *ONLY_AS_WRITTEN]:
        assert any(c.startswith(start) for c in commands), start


@pytest.mark.parametrize(("variant", "block", "index"), list(params()))
def test_readme_command_exits_0(variant, block, index, clones):
    command = block.commands[index]
    reason = reason_to_skip(command, variant)
    if reason:
        pytest.skip(f"README line {block.line}, {command}: {reason}")
    pytest.importorskip("PIL", reason="the README's predict commands need Pillow")
    clones(variant).run_block_up_to(block, index)
