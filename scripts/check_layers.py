#!/usr/bin/python3
"""Fails on an #include between components that the build does not declare.

Usage: scripts/check_layers.py [build-dir]      (default: build)

The top CMakeLists.txt writes <build-dir>/layers.txt: every target with its folder, sources
and the targets it links. A source file belongs to the target that lists it; a header to the
target of its .cpp twin, else to the library of its folder (the lowest one when a folder has
several), except the ports: src/domain/ports/ and src/domain/model.hpp belong to imd_ports.
Every `#include "a/b.hpp"` of a file of target T that names a file of another target U must
follow a link: U is T or in T's link closure (within one folder, anything goes). So "the domain never includes an adapter" and
"common needs nothing above it" are checked by the build graph itself, not by a list that
could drift from it. Exit status 1 with each undeclared edge.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
OWNED = [("src/domain/ports/", "imd_ports"), ("src/domain/model.hpp", "imd_ports")]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
EXT = (".cpp", ".hpp", ".h", ".cc")


def read_layers(path):
    targets = {}
    cur = None
    with open(path) as fh:
        for line in fh:
            key, _, value = line.rstrip("\n").partition(" ")
            if key == "target":
                cur = targets.setdefault(value, {"dir": "", "sources": [], "links": []})
            elif key == "dir":
                cur["dir"] = os.path.relpath(value, ROOT)
            elif key == "sources":
                cur["sources"] = [s for s in value.split(";") if s and not s.endswith("NOTFOUND")]
            elif key == "links":
                cur["links"] = [re.sub(r"^\$<LINK_ONLY:(.*)>$", r"\1", s)
                                for s in value.split(";") if s and not s.endswith("NOTFOUND")]
    return targets


def closure(targets, name, memo):
    if name in memo:
        return memo[name]
    memo[name] = set()
    out = set()
    for dep in targets.get(name, {}).get("links", []):
        if dep in targets:
            out.add(dep)
            out |= closure(targets, dep, memo)
    memo[name] = out
    return out


def main(argv):
    build = argv[1] if len(argv) > 1 else os.path.join(ROOT, "build")
    layers = os.path.join(build, "layers.txt")
    if not os.path.exists(layers):
        print(f"{layers} is missing: configure the build first (scripts/build.sh)")
        return 2
    targets = read_layers(layers)
    memo = {}
    owner = {}  # repo-relative file -> the targets that compile it
    libs_in_dir = {}
    for name, t in targets.items():
        for s in t["sources"]:
            p = os.path.normpath(s if os.path.isabs(s) else os.path.join(ROOT, t["dir"], s))
            rel = os.path.relpath(p, ROOT)
            if not rel.startswith(".."):
                owner.setdefault(rel, set()).add(name)
        if t["sources"] and not name.endswith("_test") and any(
                s.endswith(".cpp") for s in t["sources"]):
            libs_in_dir.setdefault(t["dir"], []).append(name)

    def owners_of(rel):
        for prefix, name in OWNED:
            if rel == prefix or (prefix.endswith("/") and rel.startswith(prefix)):
                return {name}
        if rel in owner:
            return owner[rel]
        stem, ext = os.path.splitext(rel)
        if ext in (".hpp", ".h"):
            for twin in (stem + ".cpp", stem + ".cc"):
                if twin in owner:
                    return owner[twin]
            libs = libs_in_dir.get(os.path.dirname(rel), [])
            if libs:
                return {min(libs, key=lambda n: len(closure(targets, n, memo)))}
        return set()

    def resolve(inc, including):
        for base in (os.path.dirname(including), "src", "tests", "tools"):
            cand = os.path.normpath(os.path.join(base, inc))
            if os.path.isfile(os.path.join(ROOT, cand)):
                return cand
        return None  # generated (protobuf) or a system header in quotes

    bad = []
    checked = 0
    for top in ("src", "tests", "tools"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            for f in filenames:
                if not f.endswith(EXT):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)
                ts = owners_of(rel)
                if not ts:
                    continue
                with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for inc in INCLUDE.findall(text):
                    target_file = resolve(inc, rel)
                    if target_file is None:
                        continue
                    checked += 1
                    if os.path.dirname(target_file) == os.path.dirname(rel):
                        continue  # a folder is one component
                    us = owners_of(target_file)
                    # Every target that compiles the file must reach one that owns the header.
                    for t in sorted(ts):
                        reach = closure(targets, t, memo) | {t}
                        if us and not (us & reach):
                            u = ", ".join(sorted(us))
                            bad.append(f"{rel} ({t}) includes {inc} ({u}): {t} does not link {u}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} include edges the build does not declare")
        return 1
    print(f"{checked} includes between files follow the build's links")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
