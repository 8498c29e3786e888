#!/usr/bin/env python3
"""Lists the LinuxKit test-case manifests whose onboot/onshutdown/services
entries set per-image fields (anything beyond name and image), one line per
container: RELPATH SECTION/NNN-NAME FIELD,FIELD...  (NNN = the entry's index
in its section, as in containers/onboot/NNN-name; services have no index).

Usage: select-cases.py [CASES_DIR]   (default ../shared/compat/linuxkit/test/cases)
Only files with at least one such container are listed.  Package build files
(build.yml, build-file.yml) hold no onboot/onshutdown/services and never match."""
import os
import sys

import yaml

SECTIONS = ("onboot", "onshutdown", "services")


def containers(doc):
    for sec in SECTIONS:
        for i, e in enumerate((doc or {}).get(sec) or []):
            if not isinstance(e, dict):
                continue
            extra = sorted(set(e) - {"name", "image"})
            if extra:
                where = sec + "/" + (e.get("name", "") if sec == "services"
                                     else "%03d-%s" % (i, e.get("name", "")))
                yield where, extra


def main():
    top = os.path.dirname(os.path.abspath(__file__))
    cases = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        top, "..", "..", "..", "shared", "compat", "linuxkit", "test", "cases")
    for root, dirs, files in os.walk(cases):
        dirs.sort()
        for f in sorted(files):
            if not f.endswith(".yml"):
                continue
            p = os.path.join(root, f)
            with open(p) as fh:
                try:
                    doc = yaml.safe_load(fh)
                except yaml.YAMLError:
                    continue
            if not isinstance(doc, dict):
                continue
            rel = os.path.relpath(p, cases)
            for where, extra in containers(doc):
                print(rel, where, ",".join(extra))


main()
