"""ablasim_io - how the scripts write files: the C tools' rules (src/formats/fileguard.c) for
Python.

write_files([(path, writer), ...], inputs) writes each path through a fresh temporary in its
directory, created exclusively under a random name (a symlink planted at a predictable name such
as PATH.tmp was followed and overwrote its target: an adversarial test, session 30), flushed to
disk, then renamed over the path. Every temporary is written before the first rename, so a full
disk or an error leaves every path as it was and no temporary behind (a report's PNG and
Markdown are replaced as a set, or neither). A path that is one of `inputs` (the same file, by
device and inode, whatever its name) is refused before anything is written: a script never
writes over what it reads (side_margin.py --json RESULT.h5 turned the result into JSON).
"""

import os
import tempfile


class WriteRefused(Exception):
    """A path the script must not write (it is one of its inputs, or a directory)."""


def same_file(a, b):
    """True when a and b name one existing file (device and inode)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(paths, inputs):
    """Raise WriteRefused when an output is an input or a directory (nothing written yet)."""
    for p in paths:
        if os.path.isdir(p):
            raise WriteRefused("%s is a directory" % p)
        for i in inputs:
            if i and same_file(p, i):
                raise WriteRefused("%s is the input %s: refusing to write over it" % (p, i))


def write_files(items, inputs=()):
    """items: (path, writer) pairs; writer(tmp_path) writes the file's content to tmp_path (a
    new empty file: open it with "w"/"wb", or pass it to savefig with an explicit format).
    Raises WriteRefused (nothing written) or OSError (nothing replaced, temporaries removed)."""
    check_outputs([p for p, _ in items], inputs)
    umask = os.umask(0)  # mkstemp makes 0600; the file gets the mode open() would give it
    os.umask(umask)
    tmps = []
    try:
        for path, writer in items:
            d = os.path.dirname(os.path.abspath(path))
            fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                       dir=d)
            os.close(fd)
            tmps.append(tmp)
            os.chmod(tmp, 0o666 & ~umask)
            writer(tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        for (path, _), tmp in zip(items, tmps):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def write_text(path, text, inputs=()):
    """write_files for one text file."""
    def writer(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    write_files([(path, writer)], inputs)
