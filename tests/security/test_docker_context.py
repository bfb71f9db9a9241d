"""What `docker build` (docker/compose.yml: context = the project root) sends: never secrets, local
data or caches; always everything the image runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from tests.security.dockerignore import (
    build_context_files,
    compile_patterns,
    ignore_file_for,
    is_ignored,
    read_patterns,
)

ROOT = Path(settings.BASE_DIR)
DOCKERFILE = ROOT / "docker" / "Dockerfile"

# What a developer's checkout holds besides the tracked files (make run, make test, docker compose).
LOCAL_ONLY = [
    "docker/.env",
    ".env",
    "config/.env",
    "config/settings/.env.production",
    "prod.env",
    "db.sqlite3",
    "db.sqlite3-journal",
    "media/exports/demo/0b7f3a52-5d1e-4c55-a0c5-3f7d3a2f9e11.zip",
    "media/import-staging/5d1e4c55.upload",
    "var/log/worker.log",
    "var/celerybeat-schedule",
    "celerybeat-schedule",
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/django/__init__.py",
    ".git/HEAD",
    ".git/objects/pack/pack-1.pack",
    "node_modules/axe-core/axe.min.js",
    "staticfiles/admin/css/base.css",
    "test-artifacts/enrollment.png",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/0.17.6/123",
    ".hypothesis/examples/abc",
    "cohorts/__pycache__/models.cpython-311.pyc",
    "withings/sandbox/__pycache__/app.cpython-311.pyc",
    "measurements/exports/stray.pyc",
    "dump.sql",
    "export-copy.zip",
    "server.pem",
]


def _patterns(*lines: str):
    return compile_patterns(read_patterns("\n".join(lines)))


@pytest.mark.parametrize(
    ("lines", "path", "ignored"),
    [
        # The examples of Docker's documentation (.dockerignore).
        (["*/temp*"], "somedir/temporary.txt", True),
        (["*/temp*"], "somedir/temp/file", True),
        (["*/temp*"], "temporary.txt", False),
        (["*/temp*"], "a/b/temporary.txt", False),
        (["*/*/temp*"], "somedir/subdir/temporary.txt", True),
        (["temp?"], "tempa", True),
        (["temp?"], "tempab", False),
        (["temp?"], "dir/tempa", False),
        (["**/*.go"], "main.go", True),
        (["**/*.go"], "a/b/c.go", True),
        (["*.md", "!README.md"], "CHANGES.md", True),
        (["*.md", "!README.md"], "README.md", False),
        (["*.md", "!README*.md", "README-secret.md"], "README-secret.md", True),
        (["*.md", "!README*.md", "README-secret.md"], "README-public.md", False),
        (["*.md", "README-secret.md", "!README*.md"], "README-secret.md", False),
        # Details of the reader: comments, surrounding space, a leading slash, a trailing slash.
        (["# media", "  /media/  "], "media/x.zip", True),
        (["#media"], "#media", False),
        (["**"], "anything/at/all", True),
        (["a/**"], "a/b/c", True),
        (["a/**"], "ab/c", False),
        (["**/x/**/y"], "x/y", True),
        (["**/x/**/y"], "p/x/q/r/y", True),
        (["file[0-9].txt"], "file7.txt", True),
        (["file[0-9].txt"], "fileA.txt", False),
        (["a.b"], "axb", False),
        (["\\*"], "*", True),
        (["\\*"], "x", False),
    ],
)
def test_the_matcher_follows_dockers_rules(lines, path, ignored):
    assert is_ignored(path, _patterns(*lines)) is ignored


def _checkout(tmp_path: Path) -> Path:
    """The tracked files of this repository plus a developer's local files, in a temporary tree."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    tree = tmp_path / "checkout"
    for relative in [*filter(None, tracked), *LOCAL_ONLY]:
        target = tree / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    for name in (".dockerignore", f"{DOCKERFILE.relative_to(ROOT)}.dockerignore"):
        (tree / name).unlink(missing_ok=True)
        if (ROOT / name).is_file():
            (tree / name).write_bytes((ROOT / name).read_bytes())
    return tree


def test_the_build_context_leaves_out_secrets_local_data_and_caches(tmp_path):
    tree = _checkout(tmp_path)
    ignore_file = ignore_file_for(tree, tree / DOCKERFILE.relative_to(ROOT))
    assert ignore_file == tree / ".dockerignore"
    sent = build_context_files(tree, ignore_file)
    assert sorted(set(LOCAL_ONLY) & sent) == []
    assert not [p for p in sent if p.startswith(("tests/", "bench/", ".git", "docker/"))]


def test_the_build_context_sends_everything_the_image_runs(tmp_path):
    tree = _checkout(tmp_path)
    sent = build_context_files(tree, ignore_file_for(tree, tree / DOCKERFILE.relative_to(ROOT)))
    tracked = {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()} - set(LOCAL_ONLY)
    project_apps = [
        Path(app.path).relative_to(ROOT).as_posix()
        for app in apps.get_app_configs()
        if Path(app.path).is_relative_to(ROOT) and "site-packages" not in Path(app.path).parts
    ]
    assert sorted(project_apps) == [
        "api", "cohorts", "core", "demo", "measurements", "messaging", "redcap_bridge", "withings",
    ]  # fmt: skip
    needed_dirs = [*project_apps, "config", "templates", "static"]
    needed = {p for p in tracked if p.split("/")[0] in needed_dirs and "__pycache__" not in p}
    needed |= {"manage.py", "pyproject.toml", "uv.lock"}
    assert len(needed) > 150
    assert sorted(needed - sent) == []
