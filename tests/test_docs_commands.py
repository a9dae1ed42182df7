"""Every shell command the docs show works after `make install` (issue 20, item 9).

The ```bash blocks of README.md and docs/*.md are read here. A block is **run**, verbatim, with
bash (`set -euo pipefail`) in a copy of the small site of tests/fixtures/minisite whose day
2002-02-16 has been run: `site.toml` and `data_lake/` are there, and `.venv` points at this
checkout's. A block that cannot run here (it needs Docker, a running Airflow, a year of logs, or
it is `make demo` itself) carries the marker

    <!-- docs-test: illustrative (why) -->

on the line just above its opening fence (invisible in the rendered page). Its commands are still
checked: each program must exist after `make install` (in .venv/bin or on PATH; `docker`, `make`
and `$EDITOR` are the outside tools a reader brings), and every `mmw` command line must be accepted
by mmw's own argument parser. The whole module takes a few seconds.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from test_sql_minisite import DAY, copy_minisite

from mmw_tasks import pipeline
from mmw_tasks.cli import build_parser

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*docs-test:\s*illustrative\b")
OUTSIDE_TOOLS = {"docker", "make", "$EDITOR"}  # what a reader brings; make install does not
VENV_BIN = Path(sys.executable).parent


def _blocks() -> list[tuple[str, int, str, bool]]:
    """(file, line, code, illustrative) of every ```bash / ```sh / ```shell block."""
    out = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if re.match(r"^```(bash|sh|shell)\s*$", lines[i]):
                start, j = i, i + 1
                while not lines[j].startswith("```"):
                    j += 1
                above = lines[start - 1] if start else ""
                code = "\n".join(lines[start + 1 : j])
                out.append((path.relative_to(ROOT).as_posix(), start + 1, code, bool(MARKER.search(above))))
                i = j
            i += 1
    return out


BLOCKS = _blocks()


def _commands(code: str) -> list[list[str]]:
    """The simple commands of a block: continuations joined, comments dropped, split at ; && || |
    and with redirections and leading VAR=value assignments left out."""
    lex = shlex.shlex(code.replace("\\\n", " "), posix=True, punctuation_chars=";&|<>()")
    lex.whitespace_split = True
    lex.commenters = "#"
    lex.wordchars += "$={}:,"
    cmds: list[list[str]] = [[]]
    redirect = False
    for tok in lex:
        if tok in {";", "&&", "||", "|", "&", "(", ")"}:
            cmds.append([])
        elif set(tok) <= set("<>&"):
            redirect = True
        elif redirect:
            redirect = False
        else:
            cmds[-1].append(tok)
    return [c for c in cmds if c]


def _lines(code: str) -> list[list[str]]:
    """_commands of each line (shlex reads a new line as a space, bash as the end of a command)."""
    joined = code.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        for cmd in _commands(line):
            while cmd and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", cmd[0]):
                cmd = cmd[1:]
            if cmd:
                out.append(cmd)
    return out


def test_the_docs_have_shell_blocks_and_some_run():
    assert len(BLOCKS) >= 5
    assert any(not b[3] for b in BLOCKS) and any(b[3] for b in BLOCKS)


@pytest.mark.parametrize("where,line,code,illustrative", BLOCKS, ids=[f"{b[0]}:{b[1]}" for b in BLOCKS])
def test_every_program_exists_and_mmw_accepts_its_arguments(where, line, code, illustrative):
    path = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
    for cmd in _lines(code):
        prog = cmd[0]
        if prog in OUTSIDE_TOOLS:
            continue
        if prog.startswith(".venv/bin/"):
            prog = str(VENV_BIN / prog.removeprefix(".venv/bin/"))
        assert shutil.which(prog, path=path), f"{where}:{line}: `{cmd[0]}` is not installed by make install"
        if Path(prog).name == "mmw":
            try:
                build_parser().parse_args(cmd[1:])
            except SystemExit as e:
                pytest.fail(f"{where}:{line}: mmw rejects `{shlex.join(cmd)}` (exit {e.code})")


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory) -> Path:
    toml = copy_minisite(tmp_path_factory.mktemp("docs") / "site")
    pipeline.run_day(toml, DAY, log=lambda m: None, mail=False)
    (toml.parent / ".venv").symlink_to(VENV_BIN.parent)
    return toml.parent


RUNNABLE = [b for b in BLOCKS if not b[3]]


@pytest.mark.parametrize("where,line,code,illustrative", RUNNABLE, ids=[f"{b[0]}:{b[1]}" for b in RUNNABLE])
def test_runnable_blocks_run(site_dir, where, line, code, illustrative):
    env = {**os.environ, "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])}
    r = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + code],
        cwd=site_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = r.stdout[-2000:] + r.stderr[-2000:]
    assert r.returncode == 0, f"{where}:{line} failed (rc {r.returncode}):\n{code}\n{output}"
