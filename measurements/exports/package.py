"""The export package: data file + data dictionary + manifest + SHA256SUMS, zipped in one pass."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from . import home_averages, sessions_file
from .columns import COLUMNS, DICTIONARY_FIELDS, Column
from .rows import Row
from .writers import WRITERS

DICTIONARY_CSV = "data_dictionary.csv"
DICTIONARY_JSON = "data_dictionary.json"
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"


class _HashingWriter(io.RawIOBase):
    """Passes bytes through to `target`, counting and hashing them."""

    def __init__(self, target):
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self.digest.update(data)
        self.size += len(data)
        self.target.write(data)
        return len(data)


@dataclass
class PackageResult:
    rows: int = 0
    records: int = 0
    size: int = 0
    sha256: str = ""
    files: list[dict] = field(default_factory=list)


@lru_cache(maxsize=1)
def software_version() -> str:
    try:
        with open(Path(settings.BASE_DIR) / "pyproject.toml", "rb") as fh:
            project = tomllib.load(fh)["project"]
        return f"{project['name']} {project['version']}"
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "cohort-portal (unknown version)"


#: The other files' columns, described in the dictionary as ``<file>/<column>``.
EXTRA_DICTIONARY: tuple[tuple[str, tuple[Column, ...]], ...] = (
    (sessions_file.NAME, sessions_file.COLUMNS),
    (home_averages.CSV_NAME, home_averages.COLUMNS),
)


def dictionary_entries(
    columns: tuple[Column, ...] = COLUMNS, extra_columns=EXTRA_DICTIONARY
) -> list[dict[str, str]]:
    """The data file's columns, then the other files' as ``<file>/<column>``."""
    return [
        *(c.as_dict() for c in columns),
        *({**c.as_dict(), "name": f"{name}/{c.name}"} for name, cols in extra_columns for c in cols),
    ]


def dictionary_csv(entries: list[dict[str, str]] | None = None) -> bytes:
    entries = dictionary_entries() if entries is None else entries
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(DICTIONARY_FIELDS)
    for data in entries:
        writer.writerow([data[f] for f in DICTIONARY_FIELDS])
    return buffer.getvalue().encode()


def dictionary_json(entries: list[dict[str, str]] | None = None) -> bytes:
    entries = dictionary_entries() if entries is None else entries
    return json.dumps(entries, ensure_ascii=False, indent=2).encode()


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=dt.datetime.now(dt.UTC).timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _add_bytes(archive: zipfile.ZipFile, name: str, data: bytes, result: PackageResult, rows=None) -> None:
    archive.writestr(_entry(name), data)
    result.files.append(
        {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "rows": rows}
    )


def write_package(
    path: Path,
    *,
    fmt: str,
    rows: Iterable[Row],
    manifest: dict,
    columns: tuple[Column, ...] = COLUMNS,
    extra_columns=EXTRA_DICTIONARY,
    extras: Iterable[tuple[str, Callable[[BinaryIO], int]]] = (),
) -> PackageResult:
    """Stream `rows` into a zip at `path` (written as `path.part`, then renamed: never half a file).
    `extras`: more files, each (name, write(stream) → rows), e.g. `sessions.csv`."""
    writer, data_name = WRITERS[fmt]
    result = PackageResult()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            with archive.open(_entry(data_name), "w", force_zip64=True) as raw:
                hashing = _HashingWriter(raw)
                result.rows, result.records = writer(rows, hashing)
            result.files.append(
                {
                    "name": data_name,
                    "bytes": hashing.size,
                    "sha256": hashing.digest.hexdigest(),
                    "rows": result.rows,
                    **({"resources": result.records} if fmt == "fhir" else {}),
                }
            )
            for name, write in extras:
                with archive.open(_entry(name), "w", force_zip64=True) as raw:
                    hashing = _HashingWriter(raw)
                    extra_rows = write(hashing)
                result.files.append(
                    {
                        "name": name,
                        "bytes": hashing.size,
                        "sha256": hashing.digest.hexdigest(),
                        "rows": extra_rows,
                    }
                )
            entries = dictionary_entries(columns, extra_columns)
            _add_bytes(archive, DICTIONARY_CSV, dictionary_csv(entries), result, rows=len(entries))
            _add_bytes(archive, DICTIONARY_JSON, dictionary_json(entries), result)
            full_manifest = {
                **manifest,
                "format": fmt,
                "software": software_version(),
                "version": settings.PORTAL_VERSION,  # the release that wrote it (PORTAL_VERSION)
                "row_count": result.rows,
                **({"resource_count": result.records} if fmt == "fhir" else {}),
                "columns": [c.name for c in columns],
                "files": list(result.files),
            }
            _add_bytes(
                archive, MANIFEST, json.dumps(full_manifest, indent=2, ensure_ascii=False).encode(), result
            )
            sums = "".join(f"{f['sha256']}  {f['name']}\n" for f in result.files)
            archive.writestr(_entry(CHECKSUMS), sums)
        digest = hashlib.sha256()
        with open(partial, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        result.sha256 = digest.hexdigest()
        result.size = partial.stat().st_size
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return result
