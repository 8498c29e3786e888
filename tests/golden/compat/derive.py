#!/usr/bin/env python3
"""Writes the expected specs (*.golden.json) for the LinuxKit test cases
copied under tests/golden/compat/cases/, from the rules of
../shared/reference/linuxkit.md (§1.3 image entry fields and defaults, §1.4
label merge, §1.5 uid/gid names, §1.7 volumes, §2.2 bundle mounts, §2.3
ConfigToOCI) and the image configs in tests/golden/compat/images/.

This is a transcription of the reference, written independently of kiln
(it imports nothing of kiln and never runs it); it was run once to write
the goldens, which were then read through by hand and are committed.  The
test (tests/integration/spec-golden.sh) does not run this script: it
compares kiln against the committed files.  Re-run it only when the
reference or a fixture changes, and review the diff:

    tests/golden/compat/derive.py        # rewrites cases/**/*.golden.json

Where ../shared/reference/linuxkit.md §9 (or the text of §1-§2) has kiln
fix a LinuxKit quirk, the expectation follows kiln's documented fix and
the container's golden carries a "comment" saying so."""
import json
import os
import subprocess
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "cases")
IMAGES = os.path.join(HERE, "images")
SECTIONS = ("onboot", "onshutdown", "services")

# Every capability moby/sys/capability knows, in its (capability number)
# order: what `all` expands to (§1.3); the same list as tests/golden/getty.json.
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]

# Negative cases: LinuxKit refuses them, and so must kiln (the error text is
# kiln's; the golden only asks for a distinctive part of it).
FILE_ERRORS = {
    "000_build/091_validate_linuxkit_yaml/linuxkit.yml": "unknown top-level field",
    "000_build/070_volumes/002_rw_on_ro/test.yml": "is read-only",
}

# Cases LinuxKit builds from more than one file (the test's test.sh).
def files_of(rel):
    if rel.startswith("020_kernel/200_namespace/") and rel.endswith("/test.yml"):
        depth = rel.count("/") - 2  # test.yml's directory below 200_namespace
        return ["../" * depth + "common.yml", "test.yml"]
    return [os.path.basename(rel)]


def image_fixture(ref):
    """tests/golden/compat/images/REPO.json for an image reference."""
    repo = ref.split("@")[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:
        repo = repo[: len(repo) - len(last)] + last.split(":")[0]
    return repo.replace("/", "_")


def label_of(img):
    s = img.get("config", {}).get("Labels", {}).get("org.mobyproject.config")
    return yaml.safe_load(s) if s else {}


def pick(yml, label, key, default=None):
    """§1.4: YAML value if set (even empty), else label, else default."""
    if key in yml:
        return yml[key]
    if key in label:
        return label[key]
    return default


def expand_caps(caps):
    if len(caps) == 1 and caps[0].lower() == "none":
        return []
    if len(caps) == 1 and caps[0].lower() == "all":
        return list(ALL_CAPS)
    return list(caps)


class Fail(Exception):
    pass


def volume_source(src, opts_text, vols, readonly_check):
    """§1.7: a source not starting with / names a volume."""
    if src.startswith("/"):
        return src
    if src not in vols:
        raise Fail("volume %s not found" % src)
    if vols[src].get("readonly") and not readonly_check:
        raise Fail("read-only")
    return "/containers/volumes/%s/merged" % src


def expected(entry, img, doc, idmap):
    label = label_of(img)
    icfg = img.get("config", {})
    vols = {v["name"]: v for v in (doc.get("volumes") or [])}
    comments = []

    # process
    if "command" in entry:
        args = entry["command"]
    elif "command" in label:
        args = label["command"]
    else:
        args = (icfg.get("Entrypoint") or []) + (icfg.get("Cmd") or [])
    if "env" in entry:
        env = entry["env"]
    elif "env" in label:
        env = label["env"]
    else:
        env = icfg.get("Env") or []
    cwd = entry.get("cwd") or label.get("cwd") or icfg.get("WorkingDir") or "/"

    if "capabilities" in entry:
        caps = entry["capabilities"] or []
    else:
        caps = (label.get("capabilities") or []) + (entry.get("capabilities.add") or [])
    caps = expand_caps(caps)
    ambient = expand_caps(pick(entry, label, "ambient", []) or [])
    bounding = sorted(set(caps) | set(ambient))
    capo = {}
    if bounding:
        capo["bounding"] = bounding
    if caps:
        capo["effective"] = caps
    if bounding:
        capo["inheritable"] = bounding
        capo["permitted"] = bounding
    if ambient:
        capo["ambient"] = ambient

    def ident(v):
        if v is None or v == "" or v == "root":
            return 0
        if isinstance(v, int):
            return v
        if v in idmap:
            return idmap[v]
        raise Fail("cannot find id: %s" % v)

    user = {"uid": ident(pick(entry, label, "uid")), "gid": ident(pick(entry, label, "gid"))}
    agids = [ident(g) for g in (pick(entry, label, "additionalGids", []) or [])]
    if agids:
        user["additionalGids"] = agids
    proc = {"user": user}
    if args:
        proc["args"] = args
    if env:
        proc["env"] = env
    proc["cwd"] = cwd
    proc["capabilities"] = capo
    if pick(entry, label, "noNewPrivileges"):
        proc["noNewPrivileges"] = True
    oom = pick(entry, label, "oomScoreAdj")
    if oom is not None:
        proc["oomScoreAdj"] = oom

    readonly = bool(pick(entry, label, "readonly", False))

    # mounts (§1.4 mount map, §2.3 defaults)
    ro = ["ro"] if readonly else []
    mounts = {
        "/proc": ("proc", "proc", ["nosuid", "nodev", "noexec", "relatime"]),
        "/dev": ("tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"] + ro),
        "/dev/pts": ("devpts", "devpts",
                     ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]),
        "/sys": ("sysfs", "sysfs", ["nosuid", "noexec", "nodev"] + ro),
        "/sys/fs/cgroup": ("cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
    }
    for t in pick(entry, label, "tmpfs", []) or []:
        dest, _, opts = t.partition(":")
        mounts[dest] = ("tmpfs", "tmpfs", opts.split(",") if opts else [])
    if "binds" in entry:
        binds = entry["binds"] or []
    else:
        binds = (label.get("binds") or []) + (entry.get("binds.add") or [])
    for b in binds:
        parts = b.split(":")
        opts = parts[2].split(",") + ["rbind"] if len(parts) == 3 else ["rw", "rbind", "rshared"]
        src = volume_source(parts[0], None, vols, len(parts) == 3 and parts[2] == "ro")
        mounts[parts[1]] = ("bind", src, opts)
    for m in pick(entry, label, "mounts", []) or []:
        tp, src, dest, opts = m.get("type", ""), m.get("source", ""), m.get("destination", ""), m.get("options") or []
        if not tp and src in ("mqueue", "devpts", "proc", "sysfs", "cgroup"):
            tp = src
        if not tp and dest == "/dev":
            tp = "tmpfs"
        if not src:
            src = tp
        if not dest:
            dest = {"proc": "/proc", "devpts": "/dev/pts", "sysfs": "/sys",
                    "cgroup": "/sys/fs/cgroup", "mqueue": "/dev/mqueue"}.get(tp, "")
        if tp == "bind" and not src.startswith("/"):
            first = [o for o in opts if o in ("ro", "rw")]
            src = volume_source(src, None, vols, bool(first) and first[0] == "ro")
            comments.append(
                "mount source %s is a volume name: replaced by its merged dir as §1.7 says "
                "(LinuxKit's updateMountsAndBindsFromVolumes assigns to the loop's copy, so it "
                "leaves the bare name; kiln does what the reference and the test intend)" % m.get("source"))
        if tp == "bind" and "bind" not in opts and "rbind" not in opts:
            opts = list(opts) + ["rbind"]
            comments.append(
                "mount %s of type bind has no bind/rbind option: kiln adds rbind (runc and "
                "crun refuse such a mount with 'no such device', so LinuxKit's case never ran "
                "as written; docs/manifest.md)" % dest)
        mounts[dest] = (tp, src, opts)
    mount_list = []
    for dest in sorted(mounts):
        tp, src, opts = mounts[dest]
        o = {"destination": dest, "type": tp, "source": src}
        if opts:
            o["options"] = opts
        mount_list.append(o)

    # namespaces (§1.3, §2.3)
    nss = []
    for key, typ, dflt in (("net", "network", "root"), ("ipc", "ipc", "root"),
                           ("uts", "uts", "root"), ("pid", "pid", ""), ("userns", "user", "root")):
        v = entry.get(key) or label.get(key) or dflt
        if v in ("host", "root"):
            continue
        path = "" if v in ("new",) or (key == "net" and v == "none") else v
        nss.append({"type": typ, "path": path} if path else {"type": typ})
    nss.append({"type": "mount"})

    # devices (§1.3)
    resources = dict(pick(entry, label, "resources", {}) or {})
    rules = list(resources.get("devices") or [])
    devs = []
    for d in pick(entry, label, "devices", []) or []:
        if d["path"] == "all":
            rules.append({"allow": True, "type": d["type"], "access": "rwm"})
            continue
        dev = {"path": d["path"], "type": d["type"], "major": d.get("major", 0),
               "minor": d.get("minor", 0), "fileMode": int(str(d["mode"]), 8)}
        devs.append(dev)
        rules.append({"allow": True, "type": d["type"], "major": dev["major"],
                      "minor": dev["minor"], "access": "rwm"})
    if rules:
        resources["devices"] = rules

    def optional(obj, *keys):  # Go's omitempty: unset or empty is left out
        for k in keys:
            if pick(entry, label, k):
                obj[k] = pick(entry, label, k)

    linux = {"resources": resources, "namespaces": nss}
    optional(linux, "uidMappings", "gidMappings", "sysctl", "cgroupsPath", "rootfsPropagation",
             "maskedPaths", "readonlyPaths")
    if devs:
        linux["devices"] = devs
    spec = {"ociVersion": "1.1.0", "process": proc,
            "root": {"path": "rootfs", "readonly": True} if readonly else {"path": "rootfs"},
            "mounts": mount_list, "linux": linux}
    optional(spec, "hostname", "annotations")
    return spec, readonly, comments


def runtime_expected(entry, img, bundle, readonly):
    """§2.2 bundle mounts (the container's own extraction), then the merged
    runtime section (§1.3/§1.4: sub-field by sub-field)."""
    label = label_of(img)
    lr, yr = label.get("runtime") or {}, entry.get("runtime") or {}
    b = "/" + bundle
    if readonly:
        mounts = [{"destination": b + "/rootfs", "source": b + "/rootfs", "options": ["bind"]}]
    else:
        mounts = [
            {"destination": b + "/tmp", "type": "tmpfs", "source": "tmpfs"},
            {"destination": b + "/tmp", "options": ["remount", "private"]},
            {"destination": b + "/rootfs", "type": "overlay", "source": "overlay",
             "options": ["lowerdir=%s/lower" % b, "upperdir=%s/tmp/upper" % b,
                         "workdir=%s/tmp/work" % b]},
        ]
    rt = {}
    for key in ("cgroups", "mkdir", "interfaces", "namespace"):
        v = yr.get(key, lr.get(key))
        if v is not None:
            if key == "interfaces":
                v = [dict(i, createInRoot=bool(i.get("createInRoot"))) for i in v]
            rt[key] = v
    mounts += yr.get("mounts", lr.get("mounts")) or []
    rt["mounts"] = mounts
    bns = dict(lr.get("bindNS") or {})
    bns.update(yr.get("bindNS") or {})
    if bns:
        rt["bindNS"] = bns
    return rt


def dumps(v, ind=""):
    """JSON, 2-space indent, arrays of scalars and small objects on one line."""
    flat = json.dumps(v, ensure_ascii=False)
    if not isinstance(v, (dict, list)) or len(ind) + len(flat) <= 100 and not (
            isinstance(v, dict) and any(isinstance(x, (dict, list)) and x for x in v.values())
            and len(flat) > 60):
        return flat
    sub = ind + "  "
    if isinstance(v, list):
        return "[\n" + ",\n".join(sub + dumps(x, sub) for x in v) + "\n" + ind + "]"
    return "{\n" + ",\n".join(sub + json.dumps(k, ensure_ascii=False) + ": " + dumps(x, sub)
                              for k, x in v.items()) + "\n" + ind + "}"


def main():

    sel = subprocess.run([os.path.join(HERE, "..", "select-cases.py"), CASES],
                         check=True, capture_output=True, text=True).stdout.split("\n")
    by_file = {}
    for line in filter(None, sel):
        rel, where, _ = line.split(" ")
        by_file.setdefault(rel, []).append(where)
    for rel, wheres in sorted(by_file.items()):
        docs = [yaml.safe_load(open(os.path.join(CASES, os.path.dirname(rel), f)))
                for f in files_of(rel)]
        doc = {}
        for d in docs:  # §1.8: sections concatenated
            for k, v in (d or {}).items():
                doc[k] = doc.get(k, []) + v if isinstance(v, list) else v
        idmap, n = {}, 100
        for sec in SECTIONS:  # §1.5
            for e in doc.get(sec) or []:
                idmap[e["name"]] = n  # a repeated name: the last entry's id
                n += 1
        out = {"files": files_of(rel), "containers": []}
        if rel in FILE_ERRORS:
            out["error"] = FILE_ERRORS[rel]
        for where in wheres:
            sec, dirname = where.split("/")
            for i, e in enumerate(doc.get(sec) or []):
                d = e["name"] if sec == "services" else "%03d-%s" % (i, e["name"])
                if d == dirname:
                    break
            fixture = image_fixture(e["image"])
            img = json.load(open(os.path.join(IMAGES, fixture + ".json")))
            c = {"name": where, "image": fixture}
            if rel not in FILE_ERRORS:
                try:
                    spec, readonly, comments = expected(e, img, doc, idmap)
                    c["config"] = spec
                    c["runtime"] = runtime_expected(e, img, "containers/" + where, readonly)
                    if comments:
                        c["comment"] = "; ".join(comments)
                except Fail as f:
                    c["error"] = str(f)
            out["containers"].append(c)
        path = os.path.join(CASES, rel[:-len(".yml")] + ".golden.json")
        with open(path, "w") as f:
            f.write(dumps(out) + "\n")
    print("wrote %d goldens, %d containers" % (len(by_file), sum(map(len, by_file.values()))),
          file=sys.stderr)



main()
