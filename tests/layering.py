#!/usr/bin/env python3
"""layering.py [--edges] OBJDIR [KNOWN-CIRCLE...]: calls go down.

Reads the symbols of every object file of the berth binary (nm) and draws
an edge from file A to file B when A uses a function or variable B
defines.  A circle of files (a strongly connected set) means a lower file
calls up.  Each KNOWN-CIRCLE ("a b c", one argument) names files that
still call each other, to be broken later: a circle found must lie inside
one of them (they may shrink, never grow).  Prints every circle, the ones
not allowed with one symbol per edge; exits 1 if there is any.  With
--edges, first prints every edge between files as "edge: A -> B (SYMBOL)".
"""
import collections
import os
import subprocess
import sys


def main():
    args = sys.argv[1:]
    show_edges = args[:1] == ['--edges']
    if show_edges:
        args = args[1:]
    objdir = args[0]
    known = [set(k.split()) for k in args[1:]]
    objs = sorted(f for f in os.listdir(objdir)
                  if f.endswith('.o') and f != 'main.o')
    defs, uses = {}, collections.defaultdict(set)
    out = subprocess.run(['nm', '-A'] + [os.path.join(objdir, o) for o in objs],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        path, _, rest = line.partition(': ')
        if not rest:
            path, _, rest = line.rpartition(':')
        name = os.path.basename(path)[:-2]
        f = rest.split()
        if len(f) == 3 and f[1] in 'TDBRGSVW':
            defs[f[2]] = name
        elif len(f) == 2 and f[0] == 'U':
            uses[name].add(f[1])
    names = [o[:-2] for o in objs]
    edges, why = collections.defaultdict(set), {}
    for a in names:
        for s in sorted(uses[a]):
            b = defs.get(s)
            if b and b != a:
                edges[a].add(b)
                why.setdefault((a, b), s)
    if show_edges:
        for a in names:
            for b in sorted(edges[a]):
                print('edge: %s -> %s (%s)' % (a, b, why[(a, b)]))
    # Tarjan's strongly connected components, iteratively
    index, low, onstack, stack, sccs = {}, {}, set(), [], []
    counter = 0
    for root in names:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        onstack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    onstack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in onstack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        onstack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        sccs.append(sorted(comp))
    bad = 0
    for comp in sccs:
        if any(set(comp) <= k for k in known):
            print('known circle: ' + ' '.join(comp))
            continue
        bad = 1
        print('circle: ' + ' '.join(comp))
        for a in comp:
            for b in sorted(edges[a] & set(comp)):
                print('  %s -> %s (%s)' % (a, b, why[(a, b)]))
    print('%d files, %d edges, %d circles' %
          (len(names), sum(len(e) for e in edges.values()), len(sccs)))
    return bad


if __name__ == '__main__':
    sys.exit(main())
