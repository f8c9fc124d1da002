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
    assert list(spooled.read(0, 1 << 20)) == [(14, "a\tb\tc\n"), (whole, "d\n\n")]
    assert list(spooled.read(14, 1 << 20)) == [(whole, "d\n\n")]
    assert list(spooled.read(0, 1)) == [(14, "a\tb\tc\n")]  # at least one record per read
    assert SpoolFile.claim(spooled.path) is None  # locked while its writer lives
    spooled.close()
    claimed = SpoolFile.claim(spooled.path)
    assert claimed is not None and len(list(claimed.read(0, 1 << 20))) == 2
    claimed.close()
