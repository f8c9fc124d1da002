"""The spool's files: whole records only, whatever a crash left at the end; a file a crash
left unnamed is removed."""

import os
import struct
import zlib
from pathlib import Path

from engine.db import connection_pool
from engine.gateway.log_table import LogTable
from engine.gateway.spool import Spool, SpoolFile


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


async def test_a_file_a_crash_left_unnamed_is_removed_at_start(tmp_path: Path) -> None:
    stale, fresh = tmp_path / "1-2-ab.new", tmp_path / "3-4-cd.new"
    stale.touch()
    os.utime(stale, (0, 0))
    fresh.touch()  # (another gateway process may be just creating it)
    pool = connection_pool("postgresql://sluice@127.0.0.1:1/none")
    spool = Spool(tmp_path, 1 << 20, pool, LogTable(pool))
    spool.start()
    await spool.stop()
    assert (stale.exists(), fresh.exists()) == (False, True)
