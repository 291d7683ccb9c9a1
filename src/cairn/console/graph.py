"""The DAG as server-side SVG: a layered layout (each node one column right of its
furthest input, rows ordered by the mean row of their neighbours in three sweeps) computed here, so
the browser gets a finished picture and needs no graph library."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Node", "layout", "svg"]

WIDTH, HEIGHT = 170, 46  # a node's box, px
GAP_X, GAP_Y = 70, 22  # between columns, between rows


@dataclass
class Node:
    """One box: ``id`` unique (``repo:images``), ``label`` shown, ``kind`` (repo, pipeline,
    model, deployment: its shape and class), ``state`` (a job state: its colour), ``href``
    what a click opens, ``note`` a second line."""

    id: str
    label: str
    kind: str
    href: str
    state: str = ""
    note: str = ""
    x: float = 0.0
    y: float = 0.0
    inputs: list[str] = field(default_factory=list)


def layout(nodes: Sequence[Node], edges: Iterable[tuple[str, str]]) -> tuple[float, float]:
    """Place ``nodes`` (sets their x, y in px) for ``edges`` (from id, to id; unknown ids
    and cycles are ignored). Returns the drawing's (width, height) in px."""
    by_id = {n.id: n for n in nodes}
    for a, b in edges:
        if a in by_id and b in by_id and a != b and a not in by_id[b].inputs:
            by_id[b].inputs.append(a)
    column: dict[str, int] = {}

    def col(node_id: str, seen: frozenset[str]) -> int:
        if node_id in column:
            return column[node_id]
        ins = [i for i in by_id[node_id].inputs if i not in seen]
        c = 1 + max((col(i, seen | {node_id}) for i in ins), default=-1)
        column[node_id] = c
        return c

    for n in nodes:
        col(n.id, frozenset())
    columns: dict[int, list[Node]] = {}
    for n in nodes:
        columns.setdefault(column[n.id], []).append(n)
    outputs: dict[str, list[str]] = {n.id: [] for n in nodes}
    for n in nodes:
        for i in n.inputs:
            outputs[i].append(n.id)
    row: dict[str, float] = {}

    def sweep(order: list[int], neighbours: dict[str, list[str]]) -> None:
        for c in order:
            members = columns[c]

            def key(n: Node) -> tuple[float, float, str]:
                placed = [row[i] for i in neighbours[n.id] if i in row]
                mean = sum(placed) / len(placed) if placed else float("inf")
                return (mean, row.get(n.id, 0.0), n.id)

            members.sort(key=key)
            for r, n in enumerate(members):
                row[n.id] = r

    # forward, backward, forward (barycentre sweeps): sources sit beside what reads them
    ins = {n.id: n.inputs for n in nodes}
    sweep(sorted(columns), ins)
    sweep(sorted(columns, reverse=True), outputs)
    sweep(sorted(columns), ins)
    for c, members in columns.items():
        for r, n in enumerate(members):
            n.x = 10 + c * (WIDTH + GAP_X)
            n.y = 10 + r * (HEIGHT + GAP_Y)
    ncols = max(columns, default=0) + 1
    nrows = max((len(m) for m in columns.values()), default=1)
    return 20 + ncols * WIDTH + (ncols - 1) * GAP_X, 20 + nrows * HEIGHT + (nrows - 1) * GAP_Y


def _short(text: str, limit: int = 22) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def svg(nodes: Sequence[Node], edges: Iterable[tuple[str, str]]) -> str:
    """The SVG document (a string, safe to embed in HTML) of ``nodes`` and ``edges``: each
    node a link (keyboard focusable, its full name in a title), each edge a path with
    ``data-from``/``data-to`` naming its ends."""
    edges = list(edges)
    width, height = layout(nodes, edges)
    by_id = {n.id: n for n in nodes}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" role="img" '
        f'aria-label="pipeline graph" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/>'
        "</marker></defs>",
    ]
    for n in nodes:
        for a in n.inputs:
            src = by_id[a]
            x1, y1 = src.x + WIDTH, src.y + HEIGHT / 2
            x2, y2 = n.x, n.y + HEIGHT / 2
            mid = (x1 + x2) / 2
            parts.append(
                f'<path class="edge" data-from="{escape(a)}" data-to="{escape(n.id)}" '
                f'd="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}" '
                'marker-end="url(#arrow)"/>'
            )
    for n in nodes:
        radius = 22 if n.kind == "pipeline" else 4
        state = f" state-{escape(n.state)}" if n.state else ""
        note = escape(_short(n.note, 26))
        parts.append(
            f'<a href="{escape(n.href)}" class="node kind-{escape(n.kind)}{state}" '
            f'data-id="{escape(n.id)}"><title>{escape(n.kind)} {escape(n.label)}'
            f"{' (' + escape(n.state) + ')' if n.state else ''}</title>"
            f'<rect x="{n.x:.0f}" y="{n.y:.0f}" width="{WIDTH}" height="{HEIGHT}" '
            f'rx="{radius}"/>'
            f'<text x="{n.x + WIDTH / 2:.0f}" y="{n.y + 19:.0f}" class="label">'
            f"{escape(_short(n.label))}</text>"
            f'<text x="{n.x + WIDTH / 2:.0f}" y="{n.y + 36:.0f}" class="note">{note}</text></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
