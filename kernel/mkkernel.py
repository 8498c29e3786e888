#!/usr/bin/env python3
"""Makes the kernel image's files from Debian's linux-image .deb (run by
`kiln pkg build kernel` as the build step): $KILN_PKG_OUT/kernel (the
bzImage), kernel.tar (lib/modules/VERSION with the modules of modules.list
and their dependency closure, modules.dep/alias/symbols regenerated for the
subset by depmod), System.map and config.  Reproducible: sorted tar,
mtime $SOURCE_DATE_EPOCH, owner 0."""
import os, re, shutil, subprocess, sys, tempfile

def die(msg):
    sys.stderr.write("mkkernel: %s\n" % msg)
    sys.exit(1)

def norm(name):
    return name.replace("-", "_")

def modname(path):
    base = os.path.basename(path)
    return norm(re.sub(r"\.ko(\.(xz|zst|gz))?$", "", base))

def main():
    out = os.environ.get("KILN_PKG_OUT") or die("KILN_PKG_OUT is not set")
    debs = os.environ.get("KILN_BUILD_DEBS", "").split()
    debs or die("no linux-image .deb in KILN_BUILD_DEBS (build.debs)")
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "0")
    here = os.path.dirname(os.path.abspath(__file__))
    wanted = []
    with open(os.path.join(here, "modules.list")) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                wanted.append(norm(line))
    work = tempfile.mkdtemp(prefix="kiln-kernel-")
    try:
        full = os.path.join(work, "full")
        os.mkdir(full)
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", debs[0]], stdout=subprocess.PIPE)
        subprocess.check_call(["tar", "-x", "-C", full, "./boot", "./lib/modules"], stdin=tar.stdout)
        if tar.wait() != 0:
            die("dpkg-deb failed on " + debs[0])
        versions = os.listdir(os.path.join(full, "lib/modules"))
        len(versions) == 1 or die("expected one kernel version, found %s" % versions)
        ver = versions[0]
        mdir = os.path.join(full, "lib/modules", ver)
        subprocess.check_call(["depmod", "-b", full, ver])
        deps, paths = {}, {}
        with open(os.path.join(mdir, "modules.dep")) as f:
            for line in f:
                mod, _, rest = line.partition(":")
                name = modname(mod)
                paths[name] = mod
                deps[name] = [modname(d) for d in rest.split()]
        soft = {}
        sp = os.path.join(mdir, "modules.softdep")
        if os.path.exists(sp):
            with open(sp) as f:
                for line in f:
                    w = line.split()
                    if len(w) >= 2 and w[0] == "softdep":
                        soft[norm(w[1])] = [norm(x) for x in w[2:] if not x.endswith(":")]
        builtin = set()
        with open(os.path.join(mdir, "modules.builtin")) as f:
            for line in f:
                builtin.add(modname(line.strip()))
        chosen, todo = set(), list(wanted)
        while todo:
            m = todo.pop()
            if m in chosen:
                continue
            if m not in paths:
                if m in builtin:
                    continue
                if m in wanted:
                    die("module %s (modules.list) is not in %s" % (m, ver))
                continue  # an optional soft dependency the kernel lacks
            chosen.add(m)
            todo.extend(deps.get(m, []))
            todo.extend(soft.get(m, []))
        sub = os.path.join(work, "sub")
        sdir = os.path.join(sub, "lib/modules", ver)
        for m in sorted(chosen):
            dst = os.path.join(sdir, paths[m])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(mdir, paths[m]), dst)
        for name in ("modules.builtin", "modules.builtin.modinfo"):
            shutil.copyfile(os.path.join(mdir, name), os.path.join(sdir, name))
        with open(os.path.join(mdir, "modules.order")) as f, \
             open(os.path.join(sdir, "modules.order"), "w") as g:
            for line in f:
                if modname(line.strip()) in chosen:
                    g.write(line)
        subprocess.check_call(["depmod", "-b", sub, ver])
        subprocess.check_call(["tar", "--sort=name", "--mtime=@" + epoch, "--owner=0",
                               "--group=0", "--numeric-owner", "--mode=go-w,a+rX",
                               "--format=gnu", "-C", sub, "-cf",
                               os.path.join(out, "kernel.tar"), "lib"])
        boot = os.path.join(full, "boot")
        shutil.copyfile(os.path.join(boot, "vmlinuz-" + ver), os.path.join(out, "kernel"))
        shutil.copyfile(os.path.join(boot, "System.map-" + ver), os.path.join(out, "System.map"))
        shutil.copyfile(os.path.join(boot, "config-" + ver), os.path.join(out, "config"))
        with open(os.path.join(out, "kernel.release"), "w") as g:
            g.write(ver + "\n")
        size = os.path.getsize(os.path.join(out, "kernel.tar"))
        sys.stderr.write("mkkernel: %s: %d modules, kernel.tar %.1f MB\n" % (ver, len(chosen), size / 1e6))
    finally:
        shutil.rmtree(work, ignore_errors=True)

main()
