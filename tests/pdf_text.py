"""The text of a PDF made by fpdf2, for assertions: enough of PDF to read our own files (content
streams, `Tf` font switches, `(...) Tj` strings, each font's ToUnicode map), not a general parser."""

from __future__ import annotations

import re
import zlib

OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
BFCHAR = re.compile(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>")
FONT_ENTRY = re.compile(rb"/(F\d+)\s+(\d+) 0 R")
STRING = re.compile(rb"\(((?:\\.|[^\\)])*)\)", re.S)
TEXT_OP = re.compile(
    rb"/(F\d+)\s+[\d.]+\s+Tf"  # a font switch
    rb"|(\((?:\\.|[^\\)])*\)\s*Tj)"  # (string) Tj
    rb"|(\[(?:\((?:\\.|[^\\)])*\)|[^\]\(])*\]\s*TJ)",  # [(string) -12 (string)] TJ
    re.S,
)
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    found = {}
    for number, body in OBJECT.findall(data):
        stream = STREAM.search(body)
        content = None
        if stream:
            content = stream.group(1)
            if b"/FlateDecode" in body[: stream.start()]:
                content = zlib.decompress(content)
        found[int(number)] = (body, content)
    return found


def _unescape(literal: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(literal):
        byte = literal[i : i + 1]
        if byte == b"\\":
            nxt = literal[i + 1 : i + 2]
            octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
            if octal:
                out.append(int(octal.group(0), 8))
                i += 1 + len(octal.group(0))
                continue
            out += ESCAPES.get(nxt, nxt)
            i += 2
            continue
        out += byte
        i += 1
    return bytes(out)


def pdf_text(data: bytes) -> str:
    """Every shown string, one per line, decoded through its font's ToUnicode map."""
    objects = _objects(data)
    maps: dict[int, dict[int, str]] = {}
    for number, (body, _stream) in objects.items():
        to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if to_unicode:
            cmap = objects[int(to_unicode.group(1))][1] or b""
            maps[number] = {
                int(code, 16): bytes.fromhex(text.decode()).decode("utf-16-be")
                for code, text in BFCHAR.findall(cmap)
            }
    names = {
        name.decode(): int(ref) for body, _ in objects.values() for name, ref in FONT_ENTRY.findall(body)
    }
    lines, current = [], None
    for _body, stream in objects.values():
        if stream is None or b"BT" not in stream:
            continue
        for match in TEXT_OP.finditer(stream):
            if match.group(1):
                current = maps.get(names.get(match.group(1).decode(), -1))
                continue
            raw = b"".join(_unescape(part) for part in STRING.findall(match.group(2) or match.group(3)))
            if current is None:
                lines.append(raw.decode("latin-1"))
            else:
                codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
                lines.append("".join(current.get(c, "\ufffd") for c in codes))
    return "\n".join(lines)
