"""output/: reproducible byte for byte, written atomically, and the LaTeX compiles for real."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from derive import build
from derive.cli import main
from derive.codegen import write_atomically
from latex_tools import pdflatex_or_skip

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"


def test_committed_output_is_current():
    assert build.stale(OUTPUT) == [], "output/ is stale: run `derive build`"
    assert sorted(p.name for p in OUTPUT.iterdir()) == sorted(build.artifacts())


def test_two_builds_give_identical_bytes(tmp_path):
    build.write(tmp_path / "a")
    build.write(tmp_path / "b")
    for name in build.artifacts():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_build_check_lists_stale_files(tmp_path, capsys):
    assert main(["build", "--output", str(tmp_path)]) == 0
    assert main(["build", "--check", "--output", str(tmp_path)]) == 0
    (tmp_path / "chain.tex").write_text("old\n")
    (tmp_path / "logsumexp.md").unlink()
    capsys.readouterr()
    assert main(["build", "--check", "--output", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"stale: {tmp_path / 'chain.tex'}" in out and f"stale: {tmp_path / 'logsumexp.md'}" in out


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")

    with pytest.raises(TypeError):
        write_atomically(target, 42)  # not text: fails while writing the temporary file
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_standalone_document_compiles_with_pdflatex(tmp_path):
    pdflatex = pdflatex_or_skip()
    shutil.copy(OUTPUT / "derivations.tex", tmp_path)
    done = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", "derivations.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "derivations.log").read_text(errors="replace")
    assert done.returncode == 0, log[-3000:]
    assert (tmp_path / "derivations.pdf").stat().st_size > 1000
    assert "Undefined control sequence" not in log
    assert "! " not in log
    assert "Overfull \\hbox" not in log
