"""Docker's `.dockerignore` rules, for tests: which files of a directory a `docker build` would send.

Follows the documented behaviour of Docker's matcher (moby/patternmatcher and its `ignorefile`
reader): a line starting with `#` is a comment; each pattern is trimmed and path-cleaned, a leading
`/` is dropped; `*` and `?` never match `/`, `**` matches any number of directories (none included),
`[...]` is a character class and `\\` escapes the next character; a pattern that matches a parent
directory matches everything below it; lines starting with `!` re-include; the last matching line
decides.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

REGEX_SPECIAL = set(".+()|{}$")


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None


def read_patterns(text: str) -> list[str]:
    """The patterns of an ignore file, as Docker's reader returns them."""
    patterns = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = re.sub("^/+", "/", posixpath.normpath(line))
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append(("!" if invert else "") + line)
    return patterns


def _to_regex(pattern: str) -> re.Pattern[str]:
    out, i = ["^"], 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out.append(".*" if i == len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch in REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
            else:
                out.append("\\\\")
        else:
            out.append(ch)  # `[`, `]` and ordinary characters pass through
    return re.compile("".join(out) + "$")


def compile_patterns(patterns: list[str]) -> list[Pattern]:
    compiled = []
    for raw in patterns:
        text = raw.strip()
        if not text:
            continue
        text = posixpath.normpath(text)
        exclusion = text.startswith("!")
        if exclusion:
            if len(text) == 1:
                raise ValueError('illegal exclusion pattern: "!"')
            text = text[1:]
        compiled.append(Pattern(text, exclusion, _to_regex(text)))
    return compiled


def is_ignored(path: str, patterns: list[Pattern]) -> bool:
    """Whether the slash-separated `path` (relative to the context) is left out."""
    matched = False
    parent = posixpath.dirname(path)
    parents = parent.split("/") if parent else []
    for pattern in patterns:
        if pattern.exclusion != matched:
            continue
        match = pattern.matches(path)
        if not match:
            match = any(pattern.matches("/".join(parents[: n + 1])) for n in range(len(parents)))
        if match:
            matched = not pattern.exclusion
    return matched


def ignore_file_for(context: Path, dockerfile: Path) -> Path | None:
    """BuildKit reads `<Dockerfile>.dockerignore` beside the Dockerfile if present, else the
    context's `.dockerignore`."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"), context / ".dockerignore"):
        if candidate.is_file():
            return candidate
    return None


def build_context_files(context: Path, ignore_file: Path | None) -> set[str]:
    """Every file under `context` a build would send (slash-separated, relative)."""
    patterns = compile_patterns(read_patterns(ignore_file.read_text()) if ignore_file else [])
    sent = set()
    for root, _dirs, files in os.walk(context):
        for name in files:
            relative = (Path(root) / name).relative_to(context).as_posix()
            if not is_ignored(relative, patterns):
                sent.add(relative)
    return sent
