"""The spool's file format: whole records only, whatever a crash left at the end."""

import struct
import zlib
from pathlib import Path

from engine.gateway.spool import SpoolFile


def test_a_record_cut_short_or_corrupt_ends_the_file(tmp_path: Path) -> None:
    spooled = SpoolFile.create(tmp_path)
    spooled.write(b"".join((struct.pack("<II", 6, zlib.crc32(b"a\tb\tc\n")), b"a\tb\tc\n")))
    spooled.write(b"".join((struct.pack("<II", 3, zlib.crc32(b"d\n\n")), b"d\n\n")))
    whole = spooled.size
    with spooled.path.open("ab") as torn:  # a crash in the middle of the next append
        torn.write(struct.pack("<II", 100, 0) + b"only part of it")
    end = spooled.path.stat().st_size
    assert spooled.read(0, end) == [(14, "a\tb\tc\n"), (whole, "d\n\n")]
    assert spooled.read(14, end) == [(whole, "d\n\n")]
    assert spooled.read(0, whole - 1) == [(14, "a\tb\tc\n")]  # (only what was written through)
    assert spooled.torn_from(whole, end)  # the one record a crash interrupted: never answered
    with spooled.path.open("r+b") as garbled:  # a length no commit could have: damage
        garbled.seek(whole)
        garbled.write(struct.pack("<II", 0xFFFFFFF0, 0))
    assert not spooled.torn_from(whole, end)
    with spooled.path.open("r+b") as damaged:  # a flipped byte in the first record
        damaged.seek(9)
        damaged.write(b"X")
    assert spooled.read(0, end) == []
    assert not spooled.torn_from(0, end)  # more than one record left: set aside, not dropped
    assert SpoolFile.claim(spooled.path) is None  # locked while its writer lives
    spooled.close()
    claimed = SpoolFile.claim(spooled.path)
    assert claimed is not None and claimed.read(14, end) == [(whole, "d\n\n")]
    claimed.close()
