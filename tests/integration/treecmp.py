#!/usr/bin/env python3
"""Compares two extracted root filesystems: names, types, modes, owners,
contents, symlink targets, hard-link groups and xattrs.  Paths given with
--ignore (relative, exact) are skipped on both sides.  Prints every
difference; exit 1 when there is one.

    treecmp.py A B [--ignore PATH]...
"""
import hashlib
import os
import stat
import sys


def walk(root, ignore):
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = os.path.relpath(p, root)
            if rel in ignore:
                continue
            out[rel] = p
    return out


def describe(p):
    st = os.lstat(p)
    m = st.st_mode
    d = {"type": stat.S_IFMT(m), "mode": oct(stat.S_IMODE(m)), "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISREG(m):
        with open(p, "rb") as f:
            d["sha"] = hashlib.sha256(f.read()).hexdigest()
    if stat.S_ISLNK(m):
        d["target"] = os.readlink(p)
        del d["mode"]
    if stat.S_ISCHR(m) or stat.S_ISBLK(m):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    if not stat.S_ISLNK(m):
        d["xattrs"] = sorted((k, os.getxattr(p, k, follow_symlinks=False))
                             for k in os.listxattr(p, follow_symlinks=False))
    return d, (st.st_dev, st.st_ino)


def groups(root, tree):
    by_ino = {}
    for rel, p in tree.items():
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            by_ino.setdefault(st.st_ino, []).append(rel)
    return sorted(sorted(g) for g in by_ino.values() if len(g) > 1)


def main():
    args = sys.argv[1:]
    ignore = set()
    pos = []
    i = 0
    while i < len(args):
        if args[i] == "--ignore":
            ignore.add(args[i + 1])
            i += 2
        else:
            pos.append(args[i])
            i += 1
    a, b = pos
    ta, tb = walk(a, ignore), walk(b, ignore)
    bad = 0
    for rel in sorted(set(ta) | set(tb)):
        if rel not in ta or rel not in tb:
            print("only in %s: %s" % (a if rel in ta else b, rel))
            bad += 1
            continue
        da, _ = describe(ta[rel])
        db, _ = describe(tb[rel])
        if da != db:
            print("differs: %s\n  %s\n  %s" % (rel, da, db))
            bad += 1
    ga, gb = groups(a, ta), groups(b, tb)
    if ga != gb:
        print("hard-link groups differ:\n  %s\n  %s" % (ga, gb))
        bad += 1
    print("compared %d paths, %d hard-link groups, %d differences" % (len(ta), len(ga), bad))
    return 1 if bad else 0


sys.exit(main())
