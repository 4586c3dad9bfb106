#!/usr/bin/python3
"""Checks that the files and code symbols a document names in `backticks` exist.

Usage: scripts/check_doc_names.py docs/architecture.md [more.md ...]

A document that describes the code goes stale silently when a file moves or a function is
renamed. This reads every `code span` of the documents and checks:
  - paths (src/..., tests/..., web/..., docs/..., scripts/..., tools/..., ops/...): the file or
    folder exists (a trailing :line or "(...)" is ignored); a path under a folder that .gitignore
    lists from the root (/web/dist/, build output) is generated, so it is accepted as named;
  - Type::member: both names occur as whole words in the sources;
  - CamelCase names and snake_case names (with an underscore, optionally followed by "()"):
    they occur as whole words in the sources.
Config keys (a.b), flags (--x), JSON and prose in code spans are not checked. Exit status 1
with the list of names not found.
"""
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
SOURCE_DIRS = ["src", "tests", "tools", "web/src", "scripts"]
SOURCE_EXT = (".cpp", ".hpp", ".h", ".ts", ".tsx", ".mjs", ".sh", ".py", ".cmake", ".txt", ".proto")
PATH_PREFIXES = ("src/", "tests/", "web/", "docs/", "scripts/", "tools/", "ops/", ".ci/")

# Names of other programs' settings that the checked documents mention (not ours to find).
EXTERNAL = {"max_prepared_stmt_count"}

CAMEL = re.compile(r"^[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*$")
SNAKE = re.compile(r"^[a-z_][a-z0-9_]*_[a-z0-9_]*(\(\))?$")
KNAME = re.compile(r"^k[A-Z][A-Za-z0-9]*$")
QUALIFIED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*::)+[A-Za-z_~][A-Za-z0-9_]*(\(\))?$")


def generated_roots():
    # Root-anchored folders of .gitignore ("/web/dist/"): made by the build, absent in a clean clone.
    roots = []
    try:
        with open(os.path.join(ROOT, ".gitignore"), encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("/") and "*" not in line:
                    roots.append(line.strip("/"))
    except OSError:
        pass
    return roots


GENERATED = generated_roots()


def is_generated(path):
    return any(path == g or path.startswith(g + "/") for g in GENERATED)


def load_sources():
    words = set()
    for d in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, d)):
            dirnames[:] = [x for x in dirnames if x not in ("node_modules", "dist")]
            for f in filenames:
                if not f.endswith(SOURCE_EXT) and f != "CMakeLists.txt":
                    continue
                try:
                    with open(os.path.join(dirpath, f), encoding="utf-8", errors="replace") as fh:
                        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", fh.read()))
                except OSError:
                    pass
    return words


def spans(text):
    # Code spans outside fenced blocks (```mermaid etc. are diagrams, checked by eye).
    out = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for m in re.finditer(r"`([^`]+)`", line):
            out.append((n, m.group(1).strip()))
    return out


def check(doc, words):
    missing = []
    with open(doc, encoding="utf-8") as fh:
        text = fh.read()
    for line, span in spans(text):
        token = re.sub(r"\(.*\)$", "", span) if not span.endswith("()") else span[:-2]
        if token.startswith(PATH_PREFIXES) and " " not in token:
            path = re.sub(r":[0-9]+(-[0-9]+)?$", "", token).rstrip("/")
            if "*" in path or "<" in path:
                continue
            # a/b.{hpp,cpp}: each of them
            m = re.match(r"^(.*)\{([^}]*)\}(.*)$", path)
            paths = [m.group(1) + alt + m.group(3) for alt in m.group(2).split(",")] if m else [path]
            for p in paths:
                if not os.path.exists(os.path.join(ROOT, p)) and not is_generated(p):
                    missing.append((line, span, "no such file " + p))
            continue
        if QUALIFIED.match(span):
            for part in token.split("::"):
                if part and part not in words and part.lstrip("~") not in words:
                    missing.append((line, span, "no symbol " + part))
                    break
            continue
        if CAMEL.match(token) or SNAKE.match(span) or KNAME.match(token):
            if token not in words and token not in EXTERNAL:
                missing.append((line, span, "no symbol"))
    return missing


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    words = load_sources()
    bad = 0
    for doc in argv[1:]:
        for line, span, why in check(os.path.join(ROOT, doc) if not os.path.isabs(doc) else doc,
                                     words):
            print(f"{doc}:{line}: `{span}`: {why}")
            bad += 1
    if bad:
        print(f"{bad} names in the documents are not in the code")
        return 1
    print("every file and symbol named exists")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
