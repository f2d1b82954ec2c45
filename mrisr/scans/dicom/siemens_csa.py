"""Siemens CSA headers (the private 'SIEMENS CSA HEADER' elements): their numbers rewritten in place.

A CSA2 header ('SV10') is a list of named tags, each with items that are numbers written as text.
nibabel's csareader reads it; nothing on the registries writes it, so this module re-emits the bytes
it read with chosen items replaced (every other byte kept), in the layout nibabel reads: per tag a
64-byte name, VM, VR, SyngoDT, the item count and a check word; per item four int32 (the length, the
length, 77, the length) and the text with its NUL, padded to four bytes.
"""

import struct

TAG = struct.Struct("<64si4s3i")
ITEM = struct.Struct("<4i")


def _tags(raw):
    """[(name, header bytes, [item bytes...], trailing empty-item bytes)] of a CSA2 header, or None
    when it is not CSA2 (an older CSA1 header, or bytes that do not parse)."""
    if raw[:4] != b"SV10":
        return None
    try:
        count = struct.unpack_from("<I", raw, 8)[0]
        position, tags = 16, []
        for _ in range(count):
            header = raw[position:position + TAG.size]
            name, _, _, _, items, _ = TAG.unpack(header)
            position += TAG.size
            values, empty = [], b""
            for _ in range(items):
                length = ITEM.unpack_from(raw, position)[1]
                padded = length + (-length) % 4
                chunk = raw[position:position + ITEM.size + padded]
                position += ITEM.size + padded
                if length:
                    values.append(chunk)
                else:
                    empty += chunk
            tags.append((name.split(b"\0")[0].decode("latin-1"), header, values, empty))
        return tags, raw[:16], raw[position:]
    except struct.error:
        return None


def _item(text):
    data = text.encode("latin-1") + b"\0"
    return ITEM.pack(len(data), len(data), 77, len(data)) + data + b"\0" * ((-len(data)) % 4)


def item_numbers(raw, name):
    """The numbers of tag `name` in a CSA2 header (empty when it has none or is not CSA2)."""
    parsed = _tags(raw)
    for tag_name, _, values, _ in (parsed[0] if parsed else []):
        if tag_name == name:
            return [float(value[ITEM.size:].split(b"\0")[0]) for value in values]
    return []


def rewrite(raw, numbers):
    """The CSA2 header `raw` with the items of each tag named in `numbers` (name -> list of numbers:
    floats written with 8 decimals as Siemens writes them, ints as ints) replaced; None when `raw` is not
    a CSA2 header this module can rewrite."""
    parsed = _tags(raw)
    if parsed is None:
        return None
    tags, start, rest = parsed
    out = [start]
    for name, header, values, empty in tags:
        if name in numbers and values:
            values = [_item(str(value) if isinstance(value, int) else f"{value:.8f}") for value in numbers[name]]
        out.append(header + b"".join(values) + empty)
    return b"".join(out) + rest
