"""The order a batch's lists run in: children before parents, from the nesting graph.

A list waits for the lists of the same batch it contains. Lists on a nesting cycle (X contains Y
contains X) can never be ordered: they are reported, with every list that contains one of them, and
never looped over.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Order:
    waves: list[list[str]] = field(default_factory=list)  # wave 0 contains no list of the batch
    cycles: list[list[str]] = field(default_factory=list)  # each nesting cycle's lists, sorted
    behind_cycle: list[str] = field(default_factory=list)  # lists containing (at any depth) a list on a cycle

    def wave_of(self) -> dict[str, int]:
        return {key: n for n, wave in enumerate(self.waves) for key in wave}


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion (a deep chain must not hit Python's recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                out.append(sorted(component))
    return out


def order_lists(children: dict[str, set[str]]) -> Order:
    """``children``: each list of the batch → the lists of the batch it contains (others are ignored)."""
    graph = {key: {c for c in kids if c in children} for key, kids in children.items()}
    cycles = [c for c in _strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]
    on_cycle = {key for cycle in cycles for key in cycle}
    parents: dict[str, set[str]] = {key: set() for key in graph}
    for key, kids in graph.items():
        for kid in kids:
            parents[kid].add(key)
    # Everything that contains a list on a cycle waits for it for ever.
    behind: set[str] = set()
    todo = list(on_cycle)
    while todo:
        for parent in parents[todo.pop()]:
            if parent not in on_cycle and parent not in behind:
                behind.add(parent)
                todo.append(parent)
    waiting = {key: len(kids) for key, kids in graph.items() if key not in on_cycle and key not in behind}
    order = Order(cycles=sorted(cycles), behind_cycle=sorted(behind))
    wave = sorted(key for key, n in waiting.items() if n == 0)
    while wave:
        order.waves.append(wave)
        following: set[str] = set()
        for key in wave:
            for parent in parents[key]:
                if parent in waiting:
                    waiting[parent] -= 1
                    if waiting[parent] == 0:
                        following.add(parent)
        wave = sorted(following)
    return order
