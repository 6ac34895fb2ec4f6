#!/usr/bin/env python3
"""Vendors the Kubernetes protobuf definitions the sandbox decodes.

Usage: scripts/vendor-proto.py API_GIT_DIR APIMACHINERY_GIT_DIR TAG

API_GIT_DIR / APIMACHINERY_GIT_DIR are git directories (bare clones are fine)
of kubernetes/api and kubernetes/apimachinery; TAG is the release tag of
both (e.g. v0.36.3 = Kubernetes 1.36.3). Writes, under crates/heatcheck-sandbox/proto/:

- k8s.io/api/<group>/<version>/generated.proto and the apimachinery ones,
  unchanged;
- go-fields.tsv: what the .proto files cannot say about the JSON form, read
  from the Go struct tags of the same release (the JSON form of a kind is
  the Go struct marshalled by encoding/json):
    MESSAGE  FIELD  omitempty        non-pointer scalar with `omitempty`:
                                     a zero value is left out of JSON
    MESSAGE  FIELD  inline           `json:",inline"`: the nested message's
                                     fields are the parent's in JSON
    MESSAGE  FIELD  json=NAME        the JSON name differs from the proto name
    PACKAGE  -      group=NAME       the API group the package's kinds belong to
    MESSAGE  -      items            `type X []T` with +protobuf.nullable:
                                     the message {repeated items} is a JSON array
"""

import os
import re
import subprocess
import sys

APIMACHINERY_DIRS = [
    "pkg/apis/meta/v1",
    "pkg/runtime",
    "pkg/runtime/schema",
    "pkg/api/resource",
    "pkg/util/intstr",
]


def git(gitdir, *args):
    return subprocess.run(
        ["git", "--git-dir", gitdir, *args], check=True, capture_output=True, text=True
    ).stdout


STRUCT = re.compile(r"^type (\w+) struct \{\s*$")
FIELD = re.compile(r"^\s*(?:(\w+)\s+)?(\*?[\w.\[\]*]+)\s+`(.*)`\s*$")
NULLABLE_SLICE = re.compile(r"^type (\w+) \[\][\w.]+\s*$")


def tag(tags, key):
    m = re.search(key + r':"([^"]*)"', tags)
    return m.group(1) if m else None


def go_rows(package, source):
    """Rows of go-fields.tsv for one Go file of proto package `package`."""
    rows = []
    lines = source.splitlines()
    struct = None
    nullable = False
    for line in lines:
        if struct is None:
            if line.startswith("// +protobuf.nullable=true"):
                nullable = True
                continue
            m = NULLABLE_SLICE.match(line)
            if m and nullable:
                rows.append((f"{package}.{m.group(1)}", "-", "items"))
            if not line.startswith("//"):
                nullable = False
            m = STRUCT.match(line)
            if m:
                struct = m.group(1)
            continue
        if line.startswith("}"):
            struct = None
            continue
        m = FIELD.match(line)
        if not m:
            continue
        gotype, tags = m.group(2), m.group(3)
        pb = tag(tags, "protobuf")
        js = tag(tags, "json")
        if pb is None or js is None:
            continue
        pname = next((p[5:] for p in pb.split(",") if p.startswith("name=")), None)
        if pname is None:
            # go-to-protobuf names an unnamed field after its Go name, lowerCamel.
            goname = m.group(1) or gotype.lstrip("*").split(".")[-1]
            pname = goname[0].lower() + goname[1:]
        jparts = js.split(",")
        jname, opts = jparts[0], jparts[1:]
        msg = f"{package}.{struct}"
        if "inline" in opts:
            rows.append((msg, pname, "inline"))
            continue
        if jname and jname != pname:
            rows.append((msg, pname, f"json={jname}"))
        pointer = gotype.startswith("*")
        container = gotype.startswith("[]") or gotype.startswith("map[")
        if ("omitempty" in opts or "omitzero" in opts) and not pointer and not container:
            rows.append((msg, pname, "omitempty"))
    return rows


def vendor(gitdir, tagname, prefix, dirs, out):
    rows = []
    for d in dirs:
        proto = git(gitdir, "show", f"{tagname}:{d}/generated.proto")
        dest = os.path.join(out, prefix, d, "generated.proto")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "w") as f:
            f.write(proto)
        package = re.search(r"^package ([\w.]+);", proto, re.M).group(1)
        groups = set()
        for name in git(gitdir, "ls-tree", "--name-only", f"{tagname}:{d}").split():
            if name.endswith(".go") and not name.endswith("_test.go") and not name.startswith("zz_"):
                source = git(gitdir, "show", f"{tagname}:{d}/{name}")
                rows += go_rows(package, source)
                groups.update(re.findall(r"^// \+groupName=(\S*)", source, re.M))
                groups.update(re.findall(r"^(?:const )?\s*GroupName\s*=\s*\"([^\"]*)\"", source, re.M))
        if len(groups) == 1:
            rows.append((package, "-", "group=" + groups.pop()))
    return rows


def main():
    api, machinery, tagname = sys.argv[1:4]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "heatcheck-sandbox", "proto")
    api_dirs = sorted(
        os.path.dirname(p)
        for p in git(api, "ls-tree", "-r", "--name-only", tagname).split()
        if p.endswith("/generated.proto")
    )
    rows = vendor(machinery, tagname, "k8s.io/apimachinery", APIMACHINERY_DIRS, out)
    rows += vendor(api, tagname, "k8s.io/api", api_dirs, out)
    with open(os.path.join(out, "go-fields.tsv"), "w") as f:
        f.write(f"# Generated by scripts/vendor-proto.py from kubernetes/api and apimachinery {tagname}\n")
        for r in sorted(set(rows)):
            f.write("\t".join(r) + "\n")


main()
