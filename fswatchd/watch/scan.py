"""Directory reads for the watcher: one ``readdir`` (+ ``lstat``) pass, never following links.

Used by the race scan after a new directory is watched (H01, H05), by the initial walk
and by the overflow rescan (H10). The initial walk skips the ``lstat``: readdir(3) already
gives each entry's inode and type (``d_ino``, ``d_type``), which is all a record needs to
recognise a rename or an exchange (records.py tells changes by ctime instead). Symbolic
links are entries like any other file (kind ``KIND_SYMLINK``):
``DirEntry.is_dir(follow_symlinks=False)`` and ``lstat`` never dereference them (H14).
File system reads only; no inotify calls here.
"""

from __future__ import annotations

import errno
import os
import stat

from .tree import KIND_OTHER, KIND_REG, KIND_SYMLINK, LISTING_REC, pack_record, walk_record

__all__ = ["GONE_ERRNOS", "read_dir", "read_listing", "same_inode", "stat_record"]

#: errnos meaning "the directory is not there any more" (transient dirs, H23): ignored.
GONE_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.ESTALE})

_S_IFMT = 0o170000
_S_IFREG = stat.S_IFREG
_S_IFLNK = stat.S_IFLNK


def stat_record(st: os.stat_result) -> int:
    """The packed record of an ``lstat`` result (see ``tree.pack_record``)."""
    fmt = st.st_mode & _S_IFMT
    kind = KIND_REG if fmt == _S_IFREG else KIND_SYMLINK if fmt == _S_IFLNK else KIND_OTHER
    return pack_record(st.st_ino, st.st_size, st.st_mtime_ns, kind)


def read_dir(path: bytes) -> tuple[list[bytes], dict[bytes, int]]:
    """List ``path`` (absolute bytes): subdirectory names, and other entries with lstat.

    Returns:
        ``(dirs, files)``: subdirectory names in readdir order, and name -> packed record
        (``tree.pack_record``) for every other entry. An entry that vanishes between
        readdir and lstat is left out (its DELETE event follows).
    Raises:
        OSError: from opendir/readdir (ENOENT/ENOTDIR when the directory itself is gone,
            EACCES when it cannot be read); the caller decides.
    """
    dirs: list[bytes] = []
    files: dict[bytes, int] = {}
    dirs_append = dirs.append
    with os.scandir(path) as it:
        for entry in it:
            try:
                if entry.is_dir(follow_symlinks=False):
                    dirs_append(entry.name)
                else:
                    files[entry.name] = stat_record(entry.stat(follow_symlinks=False))
            except FileNotFoundError:
                continue
    return dirs, files


def read_listing(path: bytes) -> tuple[list[bytes], bytes]:
    """List ``path`` for the initial walk: no lstat(2), files packed (``tree.pack_listing``).

    Each file's record is a ``tree.walk_record``, from readdir's inode number and type
    alone (on file systems whose readdir gives no type, DT_UNKNOWN, ``os.DirEntry`` falls
    back to lstat by itself).

    Returns:
        ``(dirs, listing)``: subdirectory names in readdir order, and the other entries as
        a listing.
    Raises:
        OSError: as :func:`read_dir`.
    """
    dirs: list[bytes] = []
    parts: list[bytes] = []
    dirs_append, part = dirs.append, parts.append
    # The walk's loop (300,000 files on the figure-2 tree): pack_listing inlined.
    with os.scandir(path) as it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                dirs_append(entry.name)
                continue
            if entry.is_file(follow_symlinks=False):
                kind = KIND_REG
            else:
                kind = KIND_SYMLINK if entry.is_symlink() else KIND_OTHER
            part(entry.name)
            part(b"\0")
            part(walk_record(entry.inode(), kind).to_bytes(LISTING_REC, "little"))
    return dirs, b"".join(parts)


def same_inode(a: bytes, b: bytes) -> bool:
    """Whether paths ``a`` and ``b`` (bytes) name the same inode now (lstat, no follow)."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return sa.st_ino == sb.st_ino and sa.st_dev == sb.st_dev
