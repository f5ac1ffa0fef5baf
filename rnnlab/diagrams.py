"""Diagrams of the cells, drawn as SVG from one description of each.

A :class:`Diagram` lists its nodes (inputs and outputs, layers with their weights,
element-wise operations, junctions), where each sits, and the edges between them with
the symbol each carries. From that one description come the picture (:meth:`Diagram.svg`,
an inline SVG that takes the page's text colour, so it reads in light and dark themes)
and the list of symbols it shows (:meth:`Diagram.symbols`), which the book's tests
compare with the symbols of the chapter's equations: a diagram cannot show a gate the
equations lack, or miss one they have.

Symbols are written as in the book's TeX: ``x_t``, ``h_{t-1}``, ``W_{ir}``; the
functions and operations as ``σ``, ``tanh``, ``⊙``, ``1−`` and ``+``.

The cells drawn are those of :mod:`rnnlab.cells` (torch.nn's equations, DESIGN.md):
:func:`unrolled_rnn` (also with the backward pass of BPTT), :func:`gru`, :func:`lstm`,
the GRU candidate with the reset gate after the product (PyTorch, cuDNN) or before it
(Cho et al., 2014), :func:`gru_candidate` and :func:`reset_gate_placement`, and a stack
of layers, :func:`stacked`. In a notebook a diagram shows itself; :func:`side_by_side`
sets several in a row that wraps on a narrow screen.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["Node", "Edge", "Diagram", "side_by_side", "unrolled_rnn", "gru", "gru_candidate",
           "reset_gate_placement", "lstm", "stacked"]

# Fills for the kinds of box, translucent so that they read on light and dark pages.
FILLS = {"σ": "rgba(230, 159, 0, 0.22)", "tanh": "rgba(86, 180, 233, 0.25)",
         "affine": "rgba(127, 127, 127, 0.14)", "block": "rgba(0, 158, 115, 0.18)"}
FONT = "'DejaVu Serif', 'STIX Two Text', 'Times New Roman', serif"
SYMBOL_SIZE = 22     # variables and operations, in diagram units
WEIGHT_SIZE = 17     # the weights written in a box
OP_RADIUS = 15
# Narrower than this, a diagram keeps this width and scrolls sideways in its own box,
# so that the weights in its boxes stay legible on a phone.
MIN_WIDTH = 440
FIGURE_STYLE = "overflow-x: auto; margin: 1em 0"
# Derivatives flowing back (vermilion of the Okabe-Ito palette: reads on light and dark).
GRADIENT = "#e4572e"
# The page's background (the book's theme, else JupyterLab's, else white): what hides a line.
BACKGROUND = "var(--pst-color-background, var(--jp-layout-color0, white))"
SUBSCRIPT = re.compile(r"([^\W\d_]+)_(\{[^}]*\}|[^\s{])")
KINDS = ("terminal", "layer", "affine", "block", "op", "junction", "corner")


@dataclass(frozen=True)
class Node:
    """One thing drawn: a named point of the diagram.

    kind: ``"terminal"`` (an input or output such as ``h_{t-1}``, drawn as its symbol),
    ``"layer"`` (an affine map followed by σ or tanh: a box with the function and its
    weights), ``"affine"`` (a box with weights and no function), ``"op"`` (an element-wise
    operation in a circle: ``⊙``, ``+``, ``1−``, ``tanh``), ``"junction"`` (a dot where a
    line splits), ``"corner"`` (a point where a line turns, not drawn). ``at`` is the centre in diagram units, y pointing down. ``weights``
    lists the parameters a layer or affine box applies, drawn in it on one or two lines.
    """

    name: str
    kind: str
    at: tuple[float, float]
    label: str = ""
    weights: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Node {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")

    def size(self) -> tuple[float, float]:
        """Half-width and half-height of what is drawn for this node."""
        if self.kind in ("layer", "affine", "block"):
            widest = max([len(text_of(self.label)) * 0.62 * SYMBOL_SIZE]
                         + [sum(len(text_of(w)) + 1.2 for w in line) * 0.5 * WEIGHT_SIZE for line in self.weights])
            lines = len(self.weights) + (1 if self.label else 0)
            return max(widest / 2 + 10, 34), lines * 11 + 9
        if self.kind == "op":
            return OP_RADIUS, OP_RADIUS
        if self.kind in ("junction", "corner"):
            return 0, 0
        return len(text_of(self.label)) * 0.3 * SYMBOL_SIZE + 4, SYMBOL_SIZE * 0.55


@dataclass(frozen=True)
class Edge:
    """A line from one node to another, with an arrowhead at the target.

    ``via`` lists the corners in between; the line leaves and enters along the first and
    last segment, from the node's centre moved by ``source_offset`` / ``target_offset``
    (so that two lines can enter one box side by side). ``label`` is the symbol the line
    carries (``r_t``), drawn near the point ``label_at`` (default: just beside the middle
    of the first segment). ``halo`` draws a band of page colour under the line, so that
    where it crosses another line the two are seen not to join. ``backward`` draws a
    dashed line in the gradient colour: a derivative flowing back, not a value forward.
    """

    source: str
    target: str
    via: tuple[tuple[float, float], ...] = ()
    label: str = ""
    label_at: tuple[float, float] | None = None
    arrow: bool = True
    source_offset: tuple[float, float] = (0, 0)
    target_offset: tuple[float, float] = (0, 0)
    halo: bool = False
    backward: bool = False


@dataclass(frozen=True)
class Diagram:
    """A cell drawn from its nodes and edges; ``alt`` says in words what it shows."""

    name: str
    title: str
    alt: str
    width: float
    height: float
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        index = {}
        for node in self.nodes:
            if node.name in index:
                raise ValueError(f"Diagram {self.name!r}: two nodes are named {node.name!r}")
            index[node.name] = node
        for edge in self.edges:
            for end in (edge.source, edge.target):
                if end not in index:
                    raise ValueError(f"Diagram {self.name!r}: edge {edge.source!r} -> {edge.target!r} "
                                     f"names no node {end!r}")
        object.__setattr__(self, "_index", index)

    def symbols(self) -> set[str]:
        """Every symbol the picture shows: terminals, functions, operations, weights and
        the symbols written along the edges, in the book's TeX spelling."""
        found = set()
        for node in self.nodes:
            if node.label:
                found.add(node.label)
            found.update(weight for line in node.weights for weight in line)
        found.update(edge.label for edge in self.edges if edge.label)
        return found

    # --- drawing ---------------------------------------------------------------

    def svg(self) -> str:
        """The diagram as an SVG element, for inline use in HTML.

        It scales to the width of its container (up to its natural width), draws in the
        page's text colour (``currentColor``) and carries ``role="img"``, a ``<title>``
        and an ``aria-label`` with the alt text, so screen readers describe it.
        """
        marker = f"arrow-{self.name}"
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width:g} {self.height:g}" '
            f'role="img" aria-label="{html.escape(self.alt)}" class="rnnlab-diagram" '
            f'style="width: 100%; min-width: {min(MIN_WIDTH, self.width):g}px; max-width: {self.width:g}px; height: auto; '
            f'display: block; margin: 0 auto" font-family="{html.escape(FONT)}">',
            f"<title>{html.escape(self.alt)}</title>",
            f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            f'fill="currentColor"/></marker>'
            f'<marker id="{marker}-back" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
            f'fill="{GRADIENT}"/></marker></defs>',
            '<g fill="none" stroke="currentColor" stroke-width="1.8" stroke-linejoin="round">',
        ]
        # lines with a halo last, so that they cross over the others
        for edge in sorted(self.edges, key=lambda e: e.halo):
            points = self._route(edge)
            path = " ".join(f"{'M' if k == 0 else 'L'} {x:g} {y:g}" for k, (x, y) in enumerate(points))
            if edge.halo:
                parts.append(f'<path d="{path}" stroke-width="8" style="stroke: {BACKGROUND}"/>')
            if edge.backward:
                parts.append(f'<path d="{path}" stroke="{GRADIENT}" stroke-dasharray="7 4" '
                             f'marker-end="url(#{marker}-back)"/>')
                continue
            end = f' marker-end="url(#{marker})"' if edge.arrow else ""
            parts.append(f'<path d="{path}"{end}/>')
        parts.append("</g>")
        for node in self.nodes:
            parts.append(self._draw_node(node))
        for edge in self.edges:
            if edge.label:
                points = self._route(edge)
                x, y = edge.label_at or _beside(points[0], points[1])
                colour = GRADIENT if edge.backward else "currentColor"
                parts.append(_text(edge.label, x, y, SYMBOL_SIZE * 0.9, colour=colour))
        parts.append("</svg>")
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f'<figure class="rnnlab-diagram" style="{FIGURE_STYLE}">{self.svg()}</figure>'

    def _route(self, edge: Edge) -> list[tuple[float, float]]:
        """The points of an edge, from the border of its source to that of its target."""
        source, target = self._index[edge.source], self._index[edge.target]
        start = (source.at[0] + edge.source_offset[0], source.at[1] + edge.source_offset[1])
        end = (target.at[0] + edge.target_offset[0], target.at[1] + edge.target_offset[1])
        points = [start, *edge.via, end]
        points[0] = _leave(source, points[1], start)
        points[-1] = _leave(target, points[-2], end, gap=2 if edge.arrow else 0)
        return points

    def _draw_node(self, node: Node) -> str:
        x, y = node.at
        if node.kind == "corner":
            return ""
        if node.kind == "junction":
            return f'<circle cx="{x:g}" cy="{y:g}" r="4" fill="currentColor"/>'
        if node.kind == "terminal":
            return _text(node.label, x, y, SYMBOL_SIZE)
        if node.kind == "op":
            circle = (f'<circle cx="{x:g}" cy="{y:g}" r="{OP_RADIUS}" stroke="currentColor" stroke-width="1.6" '
                      f'style="fill: {BACKGROUND}"/>')
            size = SYMBOL_SIZE * {1: 1.0, 2: 0.8}.get(len(node.label), 0.62)
            return circle + _text(node.label, x, y, size, italic=False)
        half_w, half_h = node.size()
        fill = FILLS[node.label if node.kind == "layer" else node.kind]
        box = (f'<rect x="{x - half_w:g}" y="{y - half_h:g}" width="{2 * half_w:g}" height="{2 * half_h:g}" '
               f'rx="7" fill="{fill}" stroke="currentColor" stroke-width="1.6"/>')
        lines = ([(node.label, SYMBOL_SIZE)] if node.label else []) + [
            (", ".join(line), WEIGHT_SIZE) for line in node.weights]
        top = y - half_h + 9
        texts = []
        for text, size in lines:
            top += 11
            upright = node.kind == "block" or text in ("σ", "tanh")
            texts.append(_text(text, x, top, size, italic=not upright))
            top += 11
        return box + "".join(texts)


def _leave(node: Node, toward, start, gap: float = 0) -> tuple[float, float]:
    """Where a line from ``start`` (a point inside ``node``) toward a point crosses the
    node's border, ``gap`` beyond it."""
    (x, y), (tx, ty) = start, toward
    dx, dy = tx - x, ty - y
    if dx == dy == 0:
        return start
    if node.kind == "op":
        length = (dx * dx + dy * dy) ** 0.5
        reach = OP_RADIUS + gap
        return x + dx / length * reach, y + dy / length * reach
    (cx, cy), (half_w, half_h) = node.at, node.size()
    # the box's half-sizes seen from `start` in the direction of travel
    reach_x = (cx + half_w + gap - x) if dx > 0 else (x - (cx - half_w - gap))
    reach_y = (cy + half_h + gap - y) if dy > 0 else (y - (cy - half_h - gap))
    scale = min(reach_x / abs(dx) if dx else float("inf"), reach_y / abs(dy) if dy else float("inf"))
    return x + dx * scale, y + dy * scale


def _beside(start, end) -> tuple[float, float]:
    """A place for a label next to the middle of a segment."""
    (x0, y0), (x1, y1) = start, end
    mx, my = (x0 + x1) / 2, (y0 + y1) / 2
    if abs(x1 - x0) > abs(y1 - y0):
        return mx, my - 14
    return mx + 22, my


def text_of(symbol: str) -> str:
    """A symbol as plain text, without TeX's braces and underscores (for widths)."""
    return SUBSCRIPT.sub(lambda m: m.group(1) + m.group(2).strip("{}"), symbol)


def _text(symbol: str, x: float, y: float, size: float, italic: bool = True,
          colour: str = "currentColor") -> str:
    """SVG text for a symbol such as ``h_{t-1}`` or ``W_{ir}, W_{hr}``: the letters in
    italic as in TeX, each subscript smaller and lowered."""
    pieces, last = [], 0
    # names written as code (h_n[0], output[T-1]) keep their underscores
    matches = [] if "[" in symbol else SUBSCRIPT.finditer(symbol)
    for match in matches:
        pieces.append((symbol[last:match.start()], False))
        pieces.append((match.group(1), False))
        pieces.append((match.group(2).strip("{}").replace("-", "−"), True))
        last = match.end()
    pieces.append((symbol[last:], False))
    spans = []
    for text, sub in pieces:
        if not text:
            continue
        if sub:
            spans.append(f'<tspan font-size="{size * 0.7:g}" dy="{size * 0.25:g}" font-style="normal">'
                         f'{html.escape(text)}</tspan><tspan dy="{-size * 0.25:g}"></tspan>')
        else:
            style = "italic" if italic and re.fullmatch(r"[A-Za-z]+", text) else "normal"
            spans.append(f'<tspan font-style="{style}">{html.escape(text)}</tspan>')
    return (f'<text x="{x:g}" y="{y:g}" font-size="{size:g}" text-anchor="middle" dominant-baseline="central" '
            f'fill="{colour}" stroke="none">{"".join(spans)}</text>')


def side_by_side(*diagrams: Diagram, captions: tuple[str, ...] = ()):
    """Several diagrams in a row that wraps into a column on narrow screens (HTML)."""
    from IPython.display import HTML

    captions = captions or tuple(d.title for d in diagrams)
    cells = "".join(
        f'<figure style="flex: 1 1 300px; margin: 0; min-width: 0; overflow-x: auto">{d.svg()}'
        f'<figcaption style="text-align: center">{html.escape(caption)}</figcaption></figure>'
        for d, caption in zip(diagrams, captions))
    return HTML(f'<div class="rnnlab-diagrams" style="display: flex; flex-wrap: wrap; gap: 1.5em">{cells}</div>')


# --- the cells -----------------------------------------------------------------------


def unrolled_rnn(steps: int = 2, backward: bool = False) -> Diagram:
    """The vanilla RNN unrolled over ``steps`` steps and the last step T: one box per
    step, every box with the same weights ``W_ih, W_hh, b_ih, b_hh``.

    With ``backward=True`` each step also has its loss term ℓ_t above it, and dashed
    arrows show what backpropagation through time sends back: dL/dh_t from each state
    to the one before it, and ∂ℓ_t/∂h_t from each loss term to its state.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    pitch, top = 150, 60 + (75 if backward else 0)
    names = [str(k) for k in range(1, steps + 1)] + ["T"]
    nodes, edges, previous = [Node("h0", "terminal", (24, top), "h_0")], [], "h0"
    for k, step in enumerate(names):
        x = 118 + pitch * k + (60 if step == "T" else 0)
        cell = f"cell{step}"
        nodes += [Node(cell, "layer", (x, top), "tanh", (("W_{ih}", "W_{hh}"), ("b_{ih}", "b_{hh}"))),
                  Node(f"x{step}", "terminal", (x, top + 120), f"x_{step}")]
        edges.append(Edge(f"x{step}", cell))
        if backward:
            nodes.append(Node(f"loss{step}", "terminal", (x, top - 100), f"ℓ_{step}"))
            edges += [Edge(cell, f"loss{step}", source_offset=(-14, 0), target_offset=(-14, 0)),
                      Edge(f"loss{step}", cell, source_offset=(14, 0), target_offset=(14, 0), backward=True)]
        if step == "T":
            nodes.append(Node("dots", "terminal", (x - 105, top), "⋯"))
            edges += [Edge(previous, "dots", arrow=False),
                      Edge("dots", cell, label="h_{T-1}", label_at=(x - 66, top - 22))]
            if backward:
                edges.append(Edge(cell, "dots", source_offset=(0, 26), target_offset=(0, 26),
                                  backward=True, label="dL/dh_T", label_at=(x - 70, top + 50)))
        else:
            label = "" if previous == "h0" else f"h_{names[k - 1]}"
            edges.append(Edge(previous, cell, label=label))
            if backward and previous != "h0":
                edges.append(Edge(cell, previous, source_offset=(0, 26), target_offset=(0, 26),
                                  backward=True, label=f"dL/dh_{step}", label_at=(x - pitch / 2, top + 50)))
        previous = cell
    width = 118 + pitch * steps + 60 + 120
    nodes.append(Node("hT", "terminal", (width - 24, top), "h_T"))
    edges.append(Edge(previous, "hT"))
    alt = ("A vanilla RNN unrolled in time: the initial state h_0 enters the first box; each box "
           "reads one input x_1, x_2, ..., x_T from below and the previous state from the left, "
           "applies tanh to W_ih x + b_ih + W_hh h + b_hh, and passes its state to the next box, "
           "up to h_T. Every box holds the same weights W_ih, W_hh, b_ih, b_hh.")
    if backward:
        alt += (" Above each box is its loss term l_1, l_2, ..., l_T. Dashed arrows show the "
                "backward pass: each loss term sends its partial derivative down into its state, "
                "and each state sends the total derivative dL/dh back to the state before it.")
    name = "unrolled-rnn-bptt" if backward else "unrolled-rnn"
    title = "backpropagation through time" if backward else "the vanilla RNN, unrolled"
    return Diagram(name, title, alt, width, top + 145, tuple(nodes), tuple(edges))


def _gate(name, at, function, gate, inputs="ih"):
    """A layer box for one gate: ``function`` of ``W_i· x_t + b_i· + W_h· h_{t-1} + b_h·``."""
    weights = (tuple(f"W_{{{side}{gate}}}" for side in inputs), tuple(f"b_{{{side}{gate}}}" for side in inputs))
    return Node(name, "layer", at, function, weights)


def _buses(nodes_by_name, taps, h_from, h_corner, h_y, x_y):
    """The two lines that feed boxes from below: h_{t-1} on the upper bus, x_t on the
    lower one. ``taps`` lists, left to right, ``(node name, x of its h_{t-1} line or None,
    x of its x_t line or None)``; the upper bus starts at node ``h_from`` and turns down
    at x = ``h_corner`` (None: it starts on the bus). Returns the junctions, the terminal x_t and the edges."""
    nodes, edges = [Node("x_t", "terminal", (36, x_y), "x_t")], []
    previous = {"h": h_from, "x": "x_t"}
    for name, h_x, x_x in taps:
        centre = nodes_by_name[name].at[0]
        for bus, tap_x, y in (("h", h_x, h_y), ("x", x_x, x_y)):
            if tap_x is None:
                continue
            junction = Node(f"{bus}-bus-{name}", "junction", (tap_x, y))
            first = bus == "h" and previous["h"] == h_from
            nodes.append(junction)
            corner = ((h_corner, h_y),) if first and h_corner is not None else ()
            edges += [Edge(previous[bus], junction.name, via=corner, arrow=False),
                      Edge(junction.name, name, target_offset=(tap_x - centre, 0), halo=bus == "x")]
            previous[bus] = junction.name
    # a junction at the end of a bus is a corner: no dot
    ends = set(previous.values())
    nodes = [Node(n.name, "corner", n.at) if n.name in ends and n.kind == "junction" else n for n in nodes]
    return nodes, edges


def gru() -> Diagram:
    """The GRU cell of torch.nn (reset gate after the product W_hn h_{t-1} + b_hn)."""
    top, ops, row, h_y, x_y = 40, 135, 215, 315, 365
    nodes = [
        Node("h_prev", "terminal", (36, top), "h_{t-1}"),
        Node("h-split", "junction", (82, top)),
        Node("keep", "op", (160, top), "⊙"),
        Node("sum", "op", (500, top), "+"),
        Node("h_t", "terminal", (566, top), "h_t"),
        _gate("z", (160, row), "σ", "z"),
        _gate("r", (285, row), "σ", "r"),
        Node("z-split", "junction", (160, ops)),
        Node("one-minus", "op", (230, ops), "1−"),
        Node("write", "op", (500, ops), "⊙"),
        Node("hidden-n", "affine", (392, row + 50), weights=(("W_{hn}", "b_{hn}"),)),
        Node("reset", "op", (392, row - 10), "⊙"),
        Node("n", "layer", (500, row - 10), "tanh", (("W_{in}", "b_{in}"),)),
    ]
    edges = [
        Edge("h_prev", "h-split", arrow=False), Edge("h-split", "keep"), Edge("keep", "sum"),
        Edge("sum", "h_t"),
        Edge("z", "z-split", label="z_t", label_at=(140, 158), arrow=False),
        Edge("z-split", "keep"), Edge("z-split", "one-minus"),
        Edge("one-minus", "write"), Edge("write", "sum"),
        Edge("r", "reset", via=((330, row - 10),), source_offset=(0, -10), label="r_t", label_at=(352, row - 28)),
        Edge("hidden-n", "reset"), Edge("reset", "n"),
        Edge("n", "write", label="n_t", label_at=(524, 158)),
    ]
    taps = [("z", 140, 180), ("r", 265, 305), ("hidden-n", 392, None), ("n", None, 500)]
    bus_nodes, bus_edges = _buses({n.name: n for n in nodes}, taps, "h-split", 82, h_y, x_y)
    alt = ("The GRU cell of torch.nn. The previous state h_{t-1} runs along the top; below it "
           "three boxes read x_t and h_{t-1}: the update gate z_t = sigmoid(W_iz x_t + b_iz + "
           "W_hz h_{t-1} + b_hz), the reset gate r_t (weights W_ir, W_hr, b_ir, b_hr), and the "
           "product W_hn h_{t-1} + b_hn, which r_t multiplies element-wise before it enters the "
           "candidate n_t = tanh(W_in x_t + b_in + ...). The new state h_t is z_t times h_{t-1} "
           "plus (1 - z_t) times n_t.")
    return Diagram("gru", "the GRU cell (torch.nn)", alt, 600, 390, tuple(nodes + bus_nodes),
                   tuple(edges + bus_edges))


def gru_candidate(reset: str = "after") -> Diagram:
    """The GRU's candidate n_t with the reset gate r_t applied after the product
    ``W_hn h_{t-1} + b_hn`` (``reset="after"``: torch.nn, cuDNN) or before it, to
    h_{t-1} itself (``reset="before"``: Cho et al., 2014)."""
    if reset not in ("after", "before"):
        raise ValueError(f"reset must be 'after' or 'before', got {reset!r}")
    y, below = 50, 140
    first, second = (("hidden", 112), ("reset", 210)) if reset == "after" else (("reset", 100), ("hidden", 192))
    places = dict((first, second))
    nodes = [
        Node("h_prev", "terminal", (34, y), "h_{t-1}"),
        Node("hidden", "affine", (places["hidden"], y), weights=(("W_{hn}",), ("b_{hn}",))),
        Node("reset", "op", (places["reset"], y), "⊙"),
        Node("r_t", "terminal", (places["reset"], below), "r_t"),
        Node("n", "layer", (300, y), "tanh", (("W_{in}", "b_{in}"),)),
        Node("x_t", "terminal", (300, below), "x_t"),
        Node("n_t", "terminal", (384, y), "n_t"),
    ]
    edges = [Edge("h_prev", first[0]), Edge(first[0], second[0]), Edge(second[0], "n"),
             Edge("r_t", "reset"), Edge("x_t", "n"), Edge("n", "n_t")]
    if reset == "after":
        title = "reset after the product (torch.nn, cuDNN)"
        alt = ("The GRU candidate as torch.nn and cuDNN compute it: h_{t-1} first goes through "
               "W_hn h_{t-1} + b_hn; the reset gate r_t then multiplies that product element-wise; "
               "the result is added to W_in x_t + b_in and passed through tanh to give n_t.")
    else:
        title = "reset before the product (Cho et al., 2014)"
        alt = ("The GRU candidate as Cho et al. (2014) wrote it: the reset gate r_t first "
               "multiplies h_{t-1} element-wise; the product W_hn (r_t * h_{t-1}) + b_hn follows; "
               "the result is added to W_in x_t + b_in and passed through tanh to give n_t.")
    return Diagram(f"gru-candidate-{reset}", title, alt, 410, 170, tuple(nodes), tuple(edges))


def reset_gate_placement() -> tuple[Diagram, Diagram]:
    """The two GRU candidates side by side: torch.nn's and that of Cho et al. (2014)."""
    return gru_candidate("after"), gru_candidate("before")


def lstm() -> Diagram:
    """The LSTM cell of torch.nn (gates i, f, g, o; no peepholes)."""
    top, out_y, row, h_y, x_y = 40, 175, 268, 362, 410
    nodes = [
        Node("c_prev", "terminal", (36, top), "c_{t-1}"),
        Node("forget", "op", (150, top), "⊙"),
        Node("add", "op", (318, top), "+"),
        Node("c-split", "junction", (492, top)),
        Node("c_t", "terminal", (566, top), "c_t"),
        Node("squash", "op", (492, 105), "tanh"),
        Node("show", "op", (492, out_y), "⊙"),
        Node("h_t", "terminal", (566, out_y), "h_t"),
        Node("write", "op", (318, 120), "⊙"),
        _gate("f", (150, row), "σ", "f"),
        _gate("i", (262, row), "σ", "i"),
        _gate("g", (374, row), "tanh", "g"),
        _gate("o", (492, row), "σ", "o"),
        Node("h_prev", "terminal", (36, h_y), "h_{t-1}"),
    ]
    edges = [
        Edge("c_prev", "forget"), Edge("forget", "add"), Edge("add", "c-split", arrow=False),
        Edge("c-split", "c_t"), Edge("c-split", "squash"), Edge("squash", "show"), Edge("show", "h_t"),
        Edge("write", "add"),
        Edge("f", "forget", label="f_t", label_at=(132, 190)),
        Edge("i", "write", via=((262, 120),), label="i_t", label_at=(244, 190)),
        Edge("g", "write", via=((374, 120),), label="g_t", label_at=(392, 190)),
        Edge("o", "show", label="o_t", label_at=(514, 208)),
    ]
    taps = [("f", 130, 170), ("i", 242, 282), ("g", 354, 394), ("o", 472, 512)]
    bus_nodes, bus_edges = _buses({n.name: n for n in nodes}, taps, "h_prev", None, h_y, x_y)
    alt = ("The LSTM cell of torch.nn. The cell state c_{t-1} runs along the top: the forget "
           "gate f_t multiplies it element-wise, and the input gate i_t times the candidate g_t "
           "is added, giving c_t. Below, four boxes read x_t and h_{t-1}: f_t, i_t and o_t apply "
           "sigmoid, g_t applies tanh, each to W_i· x_t + b_i· + W_h· h_{t-1} + b_h· with its own "
           "weights (W_ii, W_hi, b_ii, b_hi for i_t, and so on). The new hidden state h_t is o_t "
           "times tanh(c_t).")
    return Diagram("lstm", "the LSTM cell (torch.nn)", alt, 600, 430, tuple(nodes + bus_nodes),
                   tuple(edges + bus_edges))


def stacked(layers: int = 2, steps: int = 2, cell: str = "GRU") -> Diagram:
    """A stack of ``layers`` recurrent layers unrolled over ``steps`` steps and the last
    one: layer 0 reads the inputs, each layer above reads the states of the one below,
    and each runs its own recurrence from its own initial state ``h0[l]`` to
    ``h_n[l]``. The top layer's states are ``output``. Layers count from 0 as in torch.nn."""
    if layers < 1 or steps < 1:
        raise ValueError(f"layers and steps must be at least 1, got {layers} and {steps}")
    pitch, rise, bottom = 150, 95, 95 * layers + 90
    names = [str(k) for k in range(1, steps + 1)] + ["T"]
    nodes, edges = [], []
    xs = {step: 150 + pitch * k + (60 if step == "T" else 0) for k, step in enumerate(names)}
    for step, x in xs.items():
        nodes += [Node(f"x{step}", "terminal", (x, bottom + 10), f"x_{step}"),
                  Node(f"out{step}", "terminal", (x, 22), f"output[{step if step == 'T' else int(step) - 1}]"
                       if step != "T" else "output[T−1]")]
    for layer in range(layers):
        y = bottom - 80 - rise * layer
        nodes += [Node(f"h0-{layer}", "terminal", (36, y), f"h0[{layer}]"),
                  Node(f"hn-{layer}", "terminal", (xs["T"] + 115, y), f"h_n[{layer}]")]
        previous = f"h0-{layer}"
        for step, x in xs.items():
            node = f"c{layer}-{step}"
            nodes.append(Node(node, "block", (x, y), f"layer {layer}"))
            below = f"x{step}" if layer == 0 else f"c{layer - 1}-{step}"
            edges.append(Edge(below, node))
            if step == "T":
                dots = Node(f"dots{layer}", "terminal", (x - 95, y), "⋯")
                nodes.append(dots)
                edges += [Edge(previous, dots.name, arrow=False), Edge(dots.name, node)]
            else:
                edges.append(Edge(previous, node))
            previous = node
        edges.append(Edge(previous, f"hn-{layer}"))
    for step in xs:
        edges.append(Edge(f"c{layers - 1}-{step}", f"out{step}"))
    width = xs["T"] + 160
    alt = (f"A stack of {layers} {cell} layers unrolled in time. Layer 0 reads the inputs "
           f"x_1, x_2, ..., x_T; each layer above reads, at every step, the state the layer "
           f"below has just computed. Each layer runs its own recurrence from left to right, "
           f"from its initial state h0[l] to its last state h_n[l]; the top layer's states "
           f"are the module's output, output[0] to output[T-1].")
    return Diagram(f"stacked-{layers}", f"{layers} stacked {cell} layers", alt, width, bottom + 30,
                   tuple(nodes), tuple(edges))
