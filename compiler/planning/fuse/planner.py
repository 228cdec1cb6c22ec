"""The plan of one ``fuse`` vertex: which tree it evaluates (or the folded tensor), each product dense or sparse.

A fuse's weights belong to the paths of its *basis* tree (``tree = ...`` as written, else left to right; see
``fdg.runtime.fusion_paths``).  Without ``tree =`` every tree spans the same maps, so the compiler may evaluate any
of them: the weights are recoupled once per call (``w @ R``, a sparse matrix of 6j / 9j coefficients, batch
independent for learned weights), and a module computes the same function whichever tree the cost model picks.
The candidates are the trees of ``trees.py`` and the folded tensor (``folding.py``); each is priced with the cost
model at the representative size, the cheapest wins, and the plan keeps every estimate for the report.

Evaluating a tree is a sequence of products (``products.Product``), one per internal node bottom-up: the two
children's stacked values times the node's coupling table (dense, split or sparse, whichever the cost model prices
lower).  The root's product brings the weights in: learned
weights are folded into a per-channel table once per call (``shared``), per-row weights (an input, ``learned[z]``)
multiply the root's per-path blocks (``rows``), and without weights the root's table already adds the paths
(``sum``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

from fdg import cost, ir
from fdg.errors import FdgArgumentError
from fdg.planning.fuse import trees
from fdg.planning.fuse.folding import MAX_FOLDED, chain_entries, decision, folded
from fdg.planning.fuse.products import (
    Evaluation,
    Product,
    evaluation_steps,
    kernel_root,
    price_product,
    seconds,
    weights_mode,
)
from fdg.planning.pin import Pin
from fdg.runtime.fusion_kernel import pairs_inputs
from fdg.runtime.fusion_paths import FuseSpec, Tree, fuse_layout
from fdg.runtime.fusion_tables import FuseTable, node_table
from fdg.runtime.threads import single_threaded


@dataclass(frozen=True)
class Buffer:
    """A constant table of a fuse: ``register_fusion(name, spec, table)``."""

    name: str
    basis: bool  # built from the basis spec (the recoupling) rather than the evaluated one
    table: FuseTable


@dataclass(frozen=True)
class Buffers:
    """The constant tables of a fuse, and which product reads which."""

    all: tuple[Buffer, ...]
    tables: tuple[str, ...]  # per product: its table (for learned weights: the entries folding them in)
    unions: dict[int, str]  # product -> the index of its sparse per-channel table (learned weights, sparse)
    columns: str | None  # the root's columns: path and output column (per-row weights)
    recouple: str | None  # the recoupling matrix of the weights
    kernel: tuple[str, str] | None = None  # the root on the native kernel: its coupling matrix and kernel table


@dataclass(frozen=True)
class FuseChoice:
    """What the report says about a fuse: the choice, every candidate's estimate, and why."""

    chosen: str  # "tree ((a, b), c)" or "folded"
    basis: str  # the tree the weights belong to, spelled
    seconds: dict[str, float]  # candidate -> estimated forward + backward seconds at the representative size
    rows: int  # that size
    paths: int
    enumerated: bool  # every tree was priced (else left-to-right and greedy)
    fixed: str | None  # why the tree was not chosen by cost
    lmax: int | None
    dropped: tuple[str, ...]  # irreps lmax removed from internal nodes
    folding: str  # the folding decision, in words
    pinned: str | None = None  # the cost model's pick, where the user pinned another evaluation

    @property
    def evaluates(self) -> str:
        """What the chosen evaluation computes, in words: ``the folded tensor`` or ``tree ((a, b), c)``."""
        return "the folded tensor" if self.chosen == "folded" else self.chosen

    def lines(self, name: str) -> list[str]:
        """The report's lines about this fuse."""
        estimates = ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in self.seconds.items())
        if self.pinned is not None:
            how = f"pinned; the cost model would pick {self.pinned}"
        elif self.fixed:
            how = f"the cheaper of the weights' tree and the folded tensor: {self.fixed}"
        elif self.enumerated:
            how = "the cheapest of every tree and the folded tensor"
        else:
            how = "the cheapest of the left-to-right tree, a greedy tree and the folded tensor"
        lines = [
            f"fuse {name}: evaluates {self.evaluates} ({how}; estimates at {self.rows} rows: {estimates}); "
            f"{self.paths} paths, weights on the paths of {self.basis}",
            f"fuse {name}: {self.folding}",
        ]
        if self.lmax is not None:
            if self.dropped:
                lines.append(
                    f"fuse {name}: lmax = {self.lmax} drops irreps {', '.join(self.dropped)} at internal nodes: "
                    "trees no longer span the same space"
                )
            else:
                lines.append(f"fuse {name}: lmax = {self.lmax} drops no irrep at an internal node")
        return lines

    def as_dict(self) -> dict[str, object]:
        return {
            "evaluates": self.chosen,
            "weights_tree": self.basis,
            "estimated_seconds": self.seconds,
            "paths": self.paths,
            "all_trees_priced": self.enumerated,
            "tree_fixed_because": self.fixed,
            "lmax": self.lmax,
            "dropped_irreps": list(self.dropped),
            "folding": self.folding,
            "pinned_over": self.pinned,
        }


@dataclass(frozen=True)
class FusePlan:
    """Everything codegen and the report need about one fuse vertex."""

    value: str  # the Python name of its result
    mul: int
    muls: tuple[int, ...]  # of each input (1 or mul)
    inputs: tuple[tuple[int, ...], ...]  # irrep dimensions of one channel of each input
    out_dims: tuple[int, ...]
    labels: tuple[str, ...]
    basis: FuseSpec
    evaluation: Evaluation
    buffers: Buffers
    choice: FuseChoice
    baseline: tuple[cost.Step, ...]


def plan_fuse(
    value: str,
    op: ir.Fuse,
    operands: list[ir.WireType],
    namer: Callable[[str], str],
    rows: int,
    pin: Pin | None = None,
) -> FusePlan:
    """Price every candidate evaluation of ``op`` at ``rows`` rows and keep the cheapest (or the pinned one)."""
    with single_threaded():
        return _plan_fuse(value, op, operands, namer, rows, pin)


def _fixed(op: ir.Fuse, basis: FuseSpec) -> str | None:
    """Why the weights' tree is the only tree to price, or None where every tree computes the same function."""
    if op.tree is not None:
        return "tree = ... pins the tree"
    if fuse_layout(basis).dropped:
        return "with lmax dropping irreps, trees span different spaces"
    if weights_mode(op.weights.kind) == "sum":
        return "weights = none adds the paths of one tree, and that sum depends on the tree"
    if chain_entries(basis) > MAX_FOLDED:
        return "too many paths to recouple the weights exactly at construction"
    return None


def _pinned(value: str, pin: Pin, candidates: dict[str, Evaluation]) -> str:
    if pin.lowering not in candidates:
        known = ", ".join(repr(k) for k in candidates)
        raise FdgArgumentError(f"cannot pin {value} to {pin.lowering!r}: its evaluations are {known}")
    return pin.lowering


def _plan_fuse(
    value: str,
    op: ir.Fuse,
    operands: list[ir.WireType],
    namer: Callable[[str], str],
    rows: int,
    pin: Pin | None,
) -> FusePlan:
    features = [t for t in operands[: len(op.labels)] if isinstance(t, ir.Feature)]
    muls = tuple(t.irreps[0].mul for t in features)
    mul = max(muls)
    axis = features[0].axis.name
    basis = FuseSpec.of([t.irreps for t in features], op.irreps_out, op.basis, op.lmax)
    layout = fuse_layout(basis)
    fixed = _fixed(op, basis)
    found, enumerated = ([op.basis], True) if fixed else trees.candidates([t.irreps for t in features], muls, op.lmax)
    labels = op.labels
    form = pin.form if pin else None
    candidates: dict[str, Evaluation] = {}
    for tree in found:
        spec = basis._replace(tree=tree)
        if tree != op.basis and (fuse_layout(spec).dropped or len(fuse_layout(spec).paths) != len(layout.paths)):
            continue  # lmax drops irreps along this tree: another function space
        candidates[f"tree {trees.spell(tree, labels)}"] = sequential(value, op, basis, tree, muls, axis, rows, form)
    fold = folded(value, op.weights.kind, basis, muls, axis, rows, op.labels, form)
    if fold is not None:
        candidates["folded"] = fold
    estimates = {k: seconds(ev.steps, rows) for k, ev in candidates.items()}
    best = min(estimates, key=lambda k: (estimates[k], k != f"tree {trees.spell(op.basis, labels)}"))
    chosen = best if pin is None else _pinned(value, pin, candidates)
    evaluation = candidates[chosen]
    buffers = _buffers(value, evaluation, op, namer)
    choice = FuseChoice(
        chosen,
        trees.spell(op.basis, labels),
        estimates,
        rows,
        len(layout.paths),
        enumerated,
        fixed,
        op.lmax,
        tuple(map(str, layout.dropped)),
        decision(candidates, estimates, chosen),
        best if pin is not None else None,
    )
    dims = tuple(tuple(ir.dim for _, ir in t.irreps) for t in features)
    out_dims = tuple(ir.dim for _, ir in op.irreps_out)
    return FusePlan(
        value,
        mul,
        muls,
        dims,
        out_dims,
        labels,
        basis,
        evaluation,
        buffers,
        choice,
        baseline(value, op, basis, muls, axis),
    )


def sequential(
    value: str,
    op: ir.Fuse,
    basis: FuseSpec,
    tree: Tree,
    muls: tuple[int, ...],
    axis: str,
    rows: int,
    form: str | None = None,
) -> Evaluation:
    """Evaluate ``tree``: one product per internal node, bottom-up, the root's with the weights."""
    spec = basis._replace(tree=tree)
    layout = fuse_layout(spec)
    mode = weights_mode(op.weights.kind)
    channels = list(muls)
    products: list[Product] = []
    for j in range(len(muls), len(layout.nodes)):
        node = layout.nodes[j]
        channels.append(max(channels[node.left], channels[node.right]))
        root = j == len(layout.nodes) - 1
        table = node_table(spec, j, summed=root and mode == "sum")
        label = trees.spell(node.tree, op.labels)
        part = FuseTable("root") if root else FuseTable("node", j)
        weights = mode if root else ""
        operands = (node.left, node.right)
        chans = (channels[node.left], channels[node.right])
        product = price_product(value, spec, part, operands, label, chans, table, weights, axis, rows, form)
        if root and mode == "rows" and chans == (max(muls), 1) and form is None:
            child = layout.nodes[node.left]  # computed by the kernel too where it couples two inputs of mul channels
            paired = pairs_inputs(spec) and channels[child.left] == channels[child.right] == max(muls)
            product = kernel_root(value, spec, product, max(muls), axis, paired)
            if paired:  # the left child's product is only the fallback's
                products[node.left - len(muls)] = replace(products[node.left - len(muls)], steps=())
        products.append(product)
    recouple = 0 if tree == basis.tree or mode == "sum" else recoupling_size(basis, tree)
    steps = evaluation_steps(value, spec, muls, op.weights.kind, recouple, tuple(products), axis)
    return Evaluation(spec, False, recouple, tuple(products), steps)


def recoupling_size(basis: FuseSpec, tree: Tree) -> int:
    """Entries of the recoupling matrix from ``basis`` to ``tree``, for pricing: it is block diagonal, a block per
    choice of the inputs' irreps and output irrep, so at most the sum of the blocks' squared sizes (some 6j
    symbols vanish).  Counted from the paths: the matrix itself is built only for the tree chosen."""
    blocks = Counter((p.leaves, p.i_out) for p in fuse_layout(basis).paths)
    return sum(n * n for n in blocks.values())


def _buffers(value: str, ev: Evaluation, op: ir.Fuse, namer: Callable[[str], str]) -> Buffers:
    """The constant tables the chosen evaluation reads, named uniquely."""
    found = []
    tables = []
    unions = {}
    for k, p in enumerate(ev.products):
        found.append(Buffer(namer(f"{value}_{p.part.label}"), False, p.table))
        tables.append(found[-1].name)
        if p.weights == "shared" and p.sparse:
            found.append(Buffer(namer(f"{value}_{p.part.label}_union"), False, p.part._replace(union=True)))
            unions[k] = found[-1].name
    columns = recouple = None
    if weights_mode(op.weights.kind) == "rows":
        found.append(Buffer(columns := namer(f"{value}_columns"), False, FuseTable("columns")))
    if ev.recouple:
        found.append(Buffer(recouple := namer(f"{value}_recouple"), True, FuseTable("recouple", target=ev.spec.tree)))
    kernel = None
    if ev.products[-1].kernel:
        found.append(Buffer(matrix := namer(f"{value}_kernel"), False, FuseTable("kernel")))
        kernel = (matrix, namer(f"{value}_kernel_table"))
    return Buffers(tuple(found), tuple(tables), unions, columns, recouple, kernel)


def baseline(value: str, op: ir.Fuse, basis: FuseSpec, muls: tuple[int, ...], axis: str) -> tuple[cost.Step, ...]:
    """The naive baseline: every path on its own, dense CG einsums along the basis tree, then the weights.

    Nothing is shared between paths (e3nn's way of writing one instruction per path): per path and internal node,
    the outer product of the two children's irreps times the dense 3j tensor.
    """
    layout = fuse_layout(basis)
    n = len(muls)
    channels = list(muls)
    for node in layout.nodes[n:]:
        channels.append(max(channels[node.left], channels[node.right]))
    work = [0.0] * len(layout.nodes)
    moved = [0.0] * len(layout.nodes)
    for path in layout.paths:
        irs = {k: layout.nodes[k].entries[i].ir for k, i in enumerate(path.leaves)}
        irs.update(
            {q: layout.nodes[q].entries[e].ir for q, e in zip(range(n, len(layout.nodes) - 1), path.inner, strict=True)}
        )
        irs[len(layout.nodes) - 1] = layout.outputs[path.i_out]
        for j in range(n, len(layout.nodes)):
            node = layout.nodes[j]
            da, db, dc = irs[node.left].dim, irs[node.right].dim, irs[j].dim
            work[j] += channels[j] * (da * db + 2 * da * db * dc)
            moved[j] += cost.ELEMENT * channels[j] * (da + db + 2 * da * db + dc)
    steps = []
    for j in range(n, len(layout.nodes)):
        what = f"per-path einsums {trees.spell(layout.nodes[j].tree, op.labels)} [{len(layout.paths)} paths]"
        out = int(moved[j] / cost.ELEMENT)
        launches = 2 * len(layout.paths)
        steps.append(cost.Step(value, what, "dense", axis, work[j], moved[j], out, 2 * work[j], 2 * moved[j], launches))
    dim = max(muls) * layout.out_dim
    weighed = layout.root_dim * max(muls)  # every path's output block times its weights
    moved_w = cost.ELEMENT * (2 * weighed + dim)
    what = f"weights, sum paths, cat -> [{dim}]"
    steps.append(cost.Step(value, what, "elementwise", axis, 2 * weighed, moved_w, dim, 2 * weighed, moved_w))
    return tuple(steps)
