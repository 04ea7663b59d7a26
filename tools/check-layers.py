#!/usr/bin/env python3
"""check-layers -- the link graph of src/ against the layers of src/README.

usage: check-layers.py README OBJDIR [SRCDIR] [--graph]

Reads the layer table of README (the lines after its heading line "layer
name files", up to the next blank line: a layer number, a name, then its
files; more files may follow on lines of their own) and, with nm, the symbols every object of OBJDIR
defines and uses (the objects of the files in SRCDIR, by default the
README's directory).  File A calls file B when A uses a symbol B defines.
Fails (status 1) when an object is in no layer, when a file calls a file of
a higher layer, or when files call each other in a cycle (calls within one
layer are allowed, cycles are not).  With --graph, prints every call.  """

import os
import re
import subprocess
import sys


def parse_table(text):
    """{file: (layer, name)} from the table under the line 'layer name files'."""
    layers = {}
    lines = text.splitlines()
    try:
        start = next(i for i, l in enumerate(lines)
                     if re.match(r"^\s*layer\s+name\s+files\s*$", l))
    except StopIteration:
        raise SystemExit("check-layers: no table headed 'layer name files' in the README")
    cur = None
    for line in lines[start + 1:]:
        if not line.strip():
            break
        m = re.match(r"^\s*(\d+)\s+(\S+)\s+(.*)$", line)
        if m:
            cur = (int(m.group(1)), m.group(2))
            rest = m.group(3)
        elif cur is not None:
            rest = line
        else:
            raise SystemExit("check-layers: bad table line: " + line)
        for f in rest.replace(",", " ").split():
            if not f.endswith(".c"):
                raise SystemExit("check-layers: not a file name in the table: " + f)
            if f in layers:
                raise SystemExit("check-layers: %s is in two layers" % f)
            layers[f] = cur
    if not layers:
        raise SystemExit("check-layers: the layer table is empty")
    return layers


def symbols(obj):
    """(defined, used) global symbol names of one object."""
    out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True,
                         check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        name, kind = f[0], f[1]
        if kind == "U":
            used.add(name)
        elif kind in "TDBRVCGSW" and kind.isupper():
            defined.add(name)
    return defined, used


def link_graph(objdir, srcdir):
    """{file.c: {callee.c: [symbols]}} of the objects in OBJDIR whose source
    is in SRCDIR (an object left from a file since removed is not read)."""
    objs = sorted(o for o in os.listdir(objdir)
                  if o.endswith(".o") and os.path.exists(os.path.join(srcdir, o[:-2] + ".c")))
    owner, uses = {}, {}
    for o in objs:
        src = o[:-2] + ".c"
        d, u = symbols(os.path.join(objdir, o))
        for s in d:
            owner[s] = src
        uses[src] = u
    graph = {}
    for src, u in uses.items():
        edges = graph.setdefault(src, {})
        for s in sorted(u):
            dst = owner.get(s)
            if dst and dst != src:
                edges.setdefault(dst, []).append(s)
    return graph


def cycles(graph):
    """The strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check(layers, graph, show=False):
    """The list of problems (empty: the graph keeps the table)."""
    problems = []
    for f in sorted(graph):
        if f not in layers:
            problems.append("%s: in no layer of the table" % f)
    for f in sorted(graph):
        for g, syms in sorted(graph[f].items()):
            if show:
                print("  %-14s -> %-14s %s" % (f, g, " ".join(syms)))
            if f in layers and g in layers and layers[g][0] > layers[f][0]:
                problems.append("upward call: %s (layer %d %s) -> %s (layer %d %s): %s"
                                % (f, layers[f][0], layers[f][1], g, layers[g][0],
                                   layers[g][1], " ".join(syms)))
    for comp in cycles(graph):
        path = []
        for f in comp:
            for g in sorted(graph[f]):
                if g in comp:
                    path.append("%s -> %s (%s)" % (f, g, " ".join(graph[f][g])))
        problems.append("cycle among %s: %s" % (" ".join(comp), "; ".join(path)))
    return problems


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(args[0]) as fh:
        layers = parse_table(fh.read())
    srcdir = args[2] if len(args) == 3 else os.path.dirname(os.path.abspath(args[0]))
    graph = link_graph(args[1], srcdir)
    if not graph:
        print("check-layers: no object of a file of %s in %s" % (srcdir, args[1]))
        return 1
    problems = check(layers, graph, "--graph" in argv)
    calls = sum(len(e) for e in graph.values())
    for p in problems:
        print("check-layers: " + p)
    print("check-layers: %d files, %d calls between files, %d layers: %s"
          % (len(graph), calls, len(set(l for l, _ in layers.values())),
             "%d problems" % len(problems) if problems else "no cycle, no upward call"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
