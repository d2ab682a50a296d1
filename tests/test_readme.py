"""The README's examples run: its Python block as a doctest, its console blocks through main()."""
import doctest
import re
import shlex
from pathlib import Path

import pytest

from derive.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def _blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _console_examples():
    for block in _blocks("console"):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, *expected = chunk.rstrip("\n").split("\n")
            yield command, expected


@pytest.mark.parametrize("number", range(len(_blocks("python"))))
def test_python_blocks_are_passing_doctests(number):
    block = _blocks("python")[number]
    test = doctest.DocTestParser().get_doctest(block, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0 and runner.tries >= 3


@pytest.mark.parametrize("command, expected", list(_console_examples()),
                         ids=[c for c, _ in _console_examples()])
def test_console_example(capsys, command, expected):
    argv = shlex.split(command)
    assert argv[0] == "derive"
    assert main(argv[1:]) == 0
    out = capsys.readouterr().out.rstrip("\n").split("\n")
    if expected and expected[0] == "...":  # the example shows the last lines only
        expected = expected[1:]
        out = out[-len(expected):]
    assert out == expected


def test_quick_start_commands_are_the_ones_ci_runs():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "python -m pip install -e . && derive latex" in README
    test = ("python -m pip install 'torch==2.13.0' && python -m pip install -e "
            "'.[test,torch,jax]' && python -m pytest")
    assert test in README
    assert test in ci
