"""Just enough of a Dockerfile parser for the image tests: stages, COPY sources, ENTRYPOINT, USER."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    op: str
    value: str
    line: int


@dataclass
class Stage:
    name: str | None
    base: str  # image reference or an earlier stage's name
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, op: str) -> list[Instruction]:
        return [i for i in self.instructions if i.op == op]


@dataclass
class Dockerfile:
    path: Path
    args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        msg = f"{self.path}: no stage {name!r}"
        raise KeyError(msg)

    def lineage(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, nearest first."""
        out = [self.stage(name)]
        names = {s.name for s in self.stages}
        while out[-1].base in names:
            out.append(self.stage(out[-1].base))
        return out

    def expand(self, text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.args.get(m.group(1), m.group(0)), text)


def logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # comment lines inside a continued instruction
        if not buf:
            start = n
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(part.strip() for part in buf)))
        buf = []
    return out


def parse(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, text in logical_lines(path.read_text()):
        op, _, value = text.partition(" ")
        op = op.upper()
        if op == "FROM":
            parts = value.split()
            parts = [p for p in parts if not p.startswith("--platform")]
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            stages.append(Stage(name, parts[0]))
        elif op == "ARG" and not stages:
            key, _, default = value.partition("=")
            args[key.strip()] = default.strip()
        elif stages:
            stages[-1].instructions.append(Instruction(op, value.strip(), line))
    return Dockerfile(path, args, stages)


def exec_form(value: str) -> list[str]:
    """ENTRYPOINT/CMD in JSON form, or shell form split like sh would."""
    value = value.strip()
    if value.startswith("["):
        return [str(x) for x in json.loads(value)]
    return ["/bin/sh", "-c", value]


def copy_sources(instr: Instruction) -> tuple[list[str], str, dict[str, str]]:
    """(sources, destination, flags) of a COPY/ADD."""
    parts = shlex.split(instr.value)
    flags = {}
    while parts and parts[0].startswith("--"):
        key, _, val = parts.pop(0)[2:].partition("=")
        flags[key] = val
    if instr.value.lstrip().startswith("[") or (parts and parts[0].startswith("[")):
        parts = json.loads(instr.value[instr.value.index("[") :])
    return parts[:-1], parts[-1], flags


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics (last matching pattern wins; ``!`` re-includes; a directory's
    exclusion covers what is under it)."""
    result = False
    for raw in patterns:
        pat = raw.strip()
        if not pat or pat.startswith("#"):
            continue
        negate = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        pat_re = pat.replace("**/", "*")  # ** matches any number of directories, close enough here
        if any(fnmatch.fnmatchcase(p, pat_re) or fnmatch.fnmatchcase(p, pat) for p in prefixes):
            result = not negate
    return result
