"""The documentation against the code: every command and every topology key is documented,
no page names a file that is not there, every link resolves, and the site builds offline with
mkdocs in strict mode (a page missing from the nav, or a broken link, fails it)."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from regionguard.config import Topology

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").glob("*.md"))
DOCS = {p: p.read_text() for p in [REPO / "README.md", *PAGES]}
TEXT = "\n".join(DOCS.values())
GLOBAL_WITH_VALUE = {"-c", "--config", "--world"}


def commands() -> list[str]:
    """Every visible command of the CLI, as its words (`lab up`, `backup`)."""
    from typer.main import get_command

    from regionguard.cli import app

    def walk(cmd: Any, prefix: tuple[str, ...] = ()) -> Iterator[str]:
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield " ".join(prefix)
            return
        for name, sub in subs.items():
            if not getattr(sub, "hidden", False):
                yield from walk(sub, (*prefix, name))

    return sorted(walk(get_command(app)))


def documented_commands() -> set[str]:
    """The command words of every `regionguard ...` the pages show, global options skipped
    and alternatives (`status|failover`) spread."""
    found: set[str] = set()
    for span in re.findall(r"regionguard(?: [^`\n|]*(?:\\?\|[^`\n|]*)*)", TEXT):
        words = span.replace("\\|", "|").split()[1:]
        while words and (words[0].startswith(("-", "[")) or words[0] in ("aws", "aws-emulated",
                                                                          "local", "FILE")):
            words = words[1:]
        if not words:
            continue
        for first in words[0].split("|"):
            found.add(first)
            for second in words[1].split("|") if len(words) > 1 else ():
                if re.fullmatch(r"[a-z][a-z-]*", second):
                    found.add(f"{first} {second}")
    return found


def test_every_command_is_documented() -> None:
    missing = [c for c in commands() if c not in documented_commands()]
    assert not missing, f"commands no page shows as `regionguard <command>`: {missing}"


def model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model an annotation holds (through Optional, unions and dict values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, dict, typing.Annotated):
        for arg in typing.get_args(annotation)[1:] if origin is dict else typing.get_args(
                annotation):
            if (found := model_of(arg)) is not None:
                return found
    return None


def topology_keys(model: type[BaseModel] = Topology, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        keys.append(f"{prefix}{name}")
        inner = model_of(field.annotation)
        if inner is not None:
            keys += topology_keys(inner, f"{prefix}{name}.")
    return keys


def test_every_topology_key_is_documented() -> None:
    """Each key, by its own name, in backticks or as a TOML assignment on some page."""
    missing = []
    for key in topology_keys():
        leaf = key.rsplit(".", 1)[-1]
        if not re.search(rf"(`[^`\n]*\b{leaf}\b[^`\n]*`|^\s*#?\s*{leaf}\s*=|\b{leaf}\s*=)",
                         TEXT, re.M):
            missing.append(key)
    assert not missing, f"topology keys no page documents: {missing}"


PATHLIKE = re.compile(r"`([A-Za-z0-9_.][A-Za-z0-9_./-]*/[A-Za-z0-9_./-]*|"
                      r"[A-Za-z0-9_-]+\.(?:py|toml|tf|sql|yml|yaml|json|html|md|lock|in|sh))`")


def named_paths(text: str) -> set[str]:
    """Paths a page names in backticks: with a slash, or a file name with an extension;
    not placeholders (DIR/…, <app>), URLs, absolute system paths or globs."""
    out = set()
    for m in PATHLIKE.finditer(text):
        path = m.group(1).removeprefix("./").rstrip("/.")
        if (not path or path.startswith(("/", "http", "127.", "us-", "eu-", "ap-"))
                or any(c in path for c in "<>*{}") or re.search(r"(^|/)[A-Z]{2,}", path)
                or "…" in path or path.count(".") > 3):
            continue
        out.add(path)
    return out


@functools.cache
def tracked() -> list[str]:
    """The repo's files (tracked, and new ones not ignored)."""
    return subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout.splitlines()
# what regionguard (or a tool it runs) writes at run time, which a page may well name: the
# state dir's parts, the sites' records, the reports, the build's and Terraform's outputs
RUNTIME_DIRS = {".regionguard", "sites", "tls", "secrets", "dataplane", "agent", "reports",
                "build", ".terraform", "cdk.out", "out"}
RUNTIME_FILES = re.compile(r"^(drill-(\d+|NNN|report)\.(json|html)|lab(-campaign)?\.(json|html)|"
                           r"journal\.jsonl|requests\.jsonl|apps\.log|uv\.lock)$")


def exists(path: str) -> bool:
    """A tracked file or folder whose path ends with `path` (`dev.lock`, `app/fence.py`), a
    module's attribute (`orchestrator/engine.drive`), or something written at run time."""
    if path.split("/")[0] in RUNTIME_DIRS or RUNTIME_FILES.match(path.rsplit("/", 1)[-1]):
        return True
    candidates = {path}
    if "." in path.rsplit("/", 1)[-1]:  # module.attribute -> module.py
        candidates.add(path.rsplit(".", 1)[0] + ".py")
    return any(f == c or f.endswith(f"/{c}") or f.startswith(f"{c}/") or f"/{c}/" in f
               for f in tracked() for c in candidates)


def test_no_page_names_a_file_that_is_not_there() -> None:
    missing = {f"{page.relative_to(REPO)}: {path}" for page, text in DOCS.items()
               for path in named_paths(text) if not exists(path)}
    assert not missing, f"pages name files that do not exist: {sorted(missing)}"


def test_every_link_between_pages_resolves() -> None:
    broken = []
    for page, text in DOCS.items():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_the_site_builds_offline_and_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert (site / "index.html").exists() and (site / "reference.html").exists()
    html = (site / "index.html").read_text()
    assert "fonts.googleapis.com" not in html  # nothing fetched from the network
