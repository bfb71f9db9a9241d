"""Get `bp.csv` out of an upload safely: size limits, ZIP-bomb checks, only `bp.csv` is ever read.

The upload may be bytes or a binary file (the admin's staged upload, the command's file): an
archive is then read where it lies and only `bp.csv` (at most 5 MB) comes into memory.
"""

from __future__ import annotations

import io
import os
import posixpath
import zipfile
from typing import BinaryIO

MAX_CSV_BYTES = 5 * 1024 * 1024
MAX_ARCHIVE_BYTES = 50 * 1024 * 1024
MAX_ZIP_ENTRIES = 200
MAX_ZIP_UNCOMPRESSED = 50 * 1024 * 1024
MAX_ZIP_RATIO = 100
RATIO_MIN_SIZE = 64 * 1024
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CSV_NAME = "bp.csv"


class ImportFileError(Exception):
    """The upload cannot be imported; the message names the problem (shown to the coordinator)."""

    def __init__(self, *messages: str):
        self.messages = list(messages)
        super().__init__("; ".join(messages))


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def is_zip(data: bytes) -> bool:
    return data[:4] in ZIP_MAGIC


def bp_csv_bytes(data: bytes | BinaryIO) -> bytes:
    """The bytes of `bp.csv`: the upload itself, or the one `bp.csv` inside a ZIP archive."""
    upload = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    size = upload.seek(0, os.SEEK_END)
    upload.seek(0)
    if not size:
        raise ImportFileError("The file is empty.")
    if not is_zip(upload.read(4)):
        if size > MAX_CSV_BYTES:
            raise ImportFileError(f"The file is too large: a bp.csv may be at most {_mb(MAX_CSV_BYTES)}.")
        upload.seek(0)
        return upload.read()
    upload.seek(0)
    return _from_zip(upload, size)


def _from_zip(upload: BinaryIO, size: int) -> bytes:
    if size > MAX_ARCHIVE_BYTES:
        raise ImportFileError(f"The archive is too large: at most {_mb(MAX_ARCHIVE_BYTES)}.")
    try:
        archive = zipfile.ZipFile(upload)
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise ImportFileError("The file looks like a ZIP archive but cannot be read (damaged?).") from exc
    if len(entries) > MAX_ZIP_ENTRIES:
        raise ImportFileError(f"The archive has too many files ({len(entries)}; at most {MAX_ZIP_ENTRIES}).")
    total = sum(e.file_size for e in entries)
    if total > MAX_ZIP_UNCOMPRESSED:
        raise ImportFileError(
            f"The archive unpacks to {_mb(total)}: at most {_mb(MAX_ZIP_UNCOMPRESSED)} (a ZIP bomb?)."
        )
    # Tiny entries (a header-only CSV) may compress oddly; anything sizeable must stay below the ratio.
    for entry in entries:
        if entry.file_size > RATIO_MIN_SIZE and entry.file_size > MAX_ZIP_RATIO * max(entry.compress_size, 1):
            raise ImportFileError(
                f"{entry.filename[:80]} is compressed over {MAX_ZIP_RATIO}:1: refused as a possible ZIP bomb."
            )
    candidates = [
        e
        for e in entries
        if not e.is_dir()
        and posixpath.basename(e.filename).lower() == CSV_NAME
        and not e.filename.startswith("__MACOSX/")
    ]
    if not candidates:
        raise ImportFileError("The archive has no bp.csv (is it the Withings 'Download my data' export?).")
    if len(candidates) > 1:
        raise ImportFileError("The archive has more than one bp.csv: upload the participant's bp.csv alone.")
    entry = candidates[0]
    if entry.flag_bits & 0x1:
        raise ImportFileError("bp.csv is encrypted in the archive.")
    if entry.file_size > MAX_CSV_BYTES:
        raise ImportFileError(f"bp.csv is too large: at most {_mb(MAX_CSV_BYTES)}.")
    try:
        with archive.open(entry) as fh:
            content = fh.read(MAX_CSV_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, ValueError, OSError, EOFError) as exc:
        raise ImportFileError(
            "bp.csv cannot be read from the archive (damaged or unsupported compression)."
        ) from exc
    if len(content) > MAX_CSV_BYTES:
        raise ImportFileError(f"bp.csv is too large: at most {_mb(MAX_CSV_BYTES)}.")
    return content
