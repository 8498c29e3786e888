#!/usr/bin/env python3
"""Runs `kiln inspect-spec` for every container of every
tests/golden/compat/cases/**/*.golden.json and compares with the golden.

Usage: compare.py KILN
Prints one line per check for tests/integration/spec-golden.sh:
  PASS <description>
  FAIL <description>
  DIAG <text>          (details of the preceding FAIL)

A golden file: {"files": [...yml, relative to the golden's directory],
"error": substring (optional: kiln must refuse the files),
"containers": [{"name": SECTION/NNN-NAME, "image": FIXTURE (images/FIXTURE.json),
"config": the whole expected config.json, "runtime": expected runtime.json
keys (a subset: keys absent from the golden are not checked),
"error": substring (kiln must refuse this container), "comment": ...}]}.
config.json is compared whole; lists compare element by element in order
(mounts are sorted by destination, capabilities as §2.3 orders them)."""
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def diff(want, got, path, out, subset):
    """Appends "PATH: expected X, got Y" for every difference."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            p = path + "." + k if path else k
            if k not in got:
                out.append("%s: expected %s, got nothing" % (p, json.dumps(want[k])))
            else:
                diff(want[k], got[k], p, out, subset)
        if not subset:
            for k in got:
                if k not in want:
                    p = path + "." + k if path else k
                    out.append("%s: expected nothing, got %s" % (p, json.dumps(got[k])))
    elif isinstance(want, list) and isinstance(got, list):
        for i in range(max(len(want), len(got))):
            p = "%s[%d]" % (path, i)
            if i >= len(got):
                out.append("%s: expected %s, got nothing" % (p, json.dumps(want[i])))
            elif i >= len(want):
                out.append("%s: expected nothing, got %s" % (p, json.dumps(got[i])))
            else:
                diff(want[i], got[i], p, out, subset)
    elif want != got or type(want) is not type(got):
        out.append("%s: expected %s, got %s" % (path, json.dumps(want), json.dumps(got)))


def run(kiln, args):
    p = subprocess.run([kiln, "-q", "inspect-spec"] + args, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr.strip()


def main():
    kiln = sys.argv[1]
    goldens = sorted(glob.glob(os.path.join(HERE, "cases", "**", "*.golden.json"),
                               recursive=True))
    for g in goldens:
        case = os.path.relpath(g, os.path.join(HERE, "cases"))[: -len(".golden.json")] + ".yml"
        gold = json.load(open(g))
        files = [os.path.join(os.path.dirname(g), f) for f in gold["files"]]
        for c in gold["containers"]:
            desc = "%s %s" % (case, c["name"])
            img = os.path.join(HERE, "images", c["image"] + ".json")
            base = ["--image-config", img] + files + [c["name"]]
            err = gold.get("error") or c.get("error")
            if err:
                rc, out, stderr = run(kiln, base)
                if rc != 0 and err in stderr:
                    print("PASS %s: refused (%s)" % (desc, err))
                else:
                    print("FAIL %s: expected an error containing %r" % (desc, err))
                    print("DIAG exit %d, stderr: %s" % (rc, stderr))
                continue
            for kind, extra, subset in (("config", [], False), ("runtime", ["--runtime"], True)):
                if kind not in c:
                    continue
                rc, out, stderr = run(kiln, extra + base)
                if rc != 0:
                    print("FAIL %s %s.json: kiln failed (exit %d)" % (desc, kind, rc))
                    print("DIAG %s" % stderr)
                    continue
                problems = []
                diff(c[kind], json.loads(out), "", problems, subset)
                if problems:
                    print("FAIL %s %s.json: %d difference(s)" % (desc, kind, len(problems)))
                    for p in problems:
                        print("DIAG %s %s %s.json %s" % (case, c["name"], kind, p))
                else:
                    print("PASS %s %s.json" % (desc, kind))


main()
