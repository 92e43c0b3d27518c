"""Loops in a directed graph of names (lines that pass calls on to each other)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def loops(nodes: Iterable[str], successors: Mapping[str, list[str]]) -> list[set[str]]:
    """The groups of nodes that reach each other (strongly connected, Tarjan's algorithm without
    recursion, in linear time) and go round: more than one node, or one that leads to itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            onward = successors.get(node, [])
            if position < len(onward):
                work.append((node, position + 1))
                target = onward[position]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1 or node in onward:
                    loops.append(group)
    return loops
