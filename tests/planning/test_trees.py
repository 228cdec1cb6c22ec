"""``fdg.planning.fuse.trees``: the coupling trees a ``fuse`` is priced on, how they are spelled, and ``lmax``.

Trees are counted up to mirroring a node (``(1, 0)`` is ``(0, 1)``): ``(2n - 3)!!`` over ``n`` leaves.  Up to
``MAX_ENUMERATED`` (every tree of four inputs) all are candidates; beyond, the left-to-right and the greedy tree.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from module_inputs import random_inputs

import fdg
from fdg import api, ir
from fdg.errors import FdgArgumentError
from fdg.planning.fuse import trees
from fdg.planning.fuse.planner import FuseChoice
from fdg.planning.pin import Pin
from fdg.planning.plan import make_plan
from fdg.runtime import Irreps
from fdg.runtime.fusion_paths import Tree, tree_leaves


def canonical(tree: Tree) -> Tree:
    """The tree with each node's children ordered by their smallest leaf (mirroring forgotten)."""
    if isinstance(tree, int):
        return tree
    a, b = canonical(tree[0]), canonical(tree[1])
    return (a, b) if min(tree_leaves(a)) < min(tree_leaves(b)) else (b, a)


def every_ordered_tree(leaves: tuple[int, ...]) -> set[Tree]:
    """Brute force: every binary tree over ``leaves``, in every order, children in either order."""
    if len(leaves) == 1:
        return {leaves[0]}
    found: set[Tree] = set()
    for k in range(1, len(leaves)):
        for left in itertools.combinations(leaves, k):
            right = tuple(leaf for leaf in leaves if leaf not in left)
            found |= {(a, b) for a in every_ordered_tree(left) for b in every_ordered_tree(right)}
    return found


def test_left_to_right() -> None:
    assert [trees.left_to_right(n) for n in (1, 2, 3, 4)] == [0, (0, 1), ((0, 1), 2), (((0, 1), 2), 3)]


def test_three_leaves_in_order() -> None:
    """Largest left part first: the left-to-right tree comes first."""
    assert list(trees.all_trees([0, 1, 2])) == [((0, 1), 2), ((0, 2), 1), (0, (1, 2))]


@pytest.mark.parametrize(("n", "count"), [(1, 1), (2, 1), (3, 3), (4, 15), (5, 105), (6, 945)])
def test_all_trees_is_every_tree_up_to_mirroring(n: int, count: int) -> None:
    found = list(trees.all_trees(list(range(n))))
    assert trees.count_trees(n) == len(found) == count
    assert len(set(found)) == count  # no tree twice
    assert all(canonical(t) == t for t in found)  # the left child holds the smaller leaf at every node
    if n <= 5:  # and nothing is missing
        assert set(found) == {canonical(t) for t in every_ordered_tree(tuple(range(n)))}


def test_all_trees_of_four_starts_left_to_right() -> None:
    found = list(trees.all_trees([0, 1, 2, 3]))
    assert found[0] == trees.left_to_right(4)
    assert ((0, 1), (2, 3)) in found and (0, (1, (2, 3))) in found and ((0, 3), (1, 2)) in found


def test_candidates_enumerate_up_to_four_inputs() -> None:
    x = Irreps("0e + 1o")
    for n, count in ((2, 1), (3, 3), (4, 15)):
        found, complete = trees.candidates([x] * n, [1] * n, None)
        assert (len(found), complete) == (count, True)
        assert trees.count_trees(n) <= trees.MAX_ENUMERATED


def test_candidates_beyond_four_inputs_are_left_to_right_and_greedy() -> None:
    """Five 0e inputs: every pair costs 1, ties go to the first pair of the list of parts, where a merged pair goes to
    the end: (0, 1), then (2, 3), then (4, (0, 1)), then the last two parts."""
    x = Irreps("0e")
    found, complete = trees.candidates([x] * 5, [1] * 5, None)
    assert complete is False
    assert found == [((((0, 1), 2), 3), 4), ((2, 3), (4, (0, 1)))]


def test_greedy_merges_the_smallest_outer_product_first() -> None:
    """Inputs 2e, 2e, 1o, 1o (multiplicity one).  The pair 1o x 1o is cheapest (3 x 3 = 9 components, against 25 or
    15).  Without lmax it carries 0e + 1e + 2e (dimension 9), so 2e x 2e (25) is next: ((2, 3), (0, 1)).  With
    lmax = 1 it carries 0e + 1e (dimension 4), and 2e x (that) costs 5 x 4 = 20 < 25: (1, (0, (2, 3)))."""
    inputs = [Irreps("2e"), Irreps("2e"), Irreps("1o"), Irreps("1o")]
    assert trees.greedy_tree(inputs, [1, 1, 1, 1], None) == ((2, 3), (0, 1))
    assert trees.greedy_tree(inputs, [1, 1, 1, 1], 1) == (1, (0, (2, 3)))


def test_greedy_counts_channels() -> None:
    """0e, 0e, 0e with multiplicities 8, 1, 1: the pair of multiplicity-one inputs is merged first."""
    assert trees.greedy_tree([Irreps("0e")] * 3, [8, 1, 1], None) == (0, (1, 2))


def test_spell() -> None:
    assert trees.spell(((0, 1), 2), ["a", "b", "h[src]"]) == "((a, b), h[src])"
    assert trees.spell(2, ["a", "b", "c"]) == "c"
    assert trees.spell((0, ((1, 3), 2)), "pqrs") == "(p, ((q, s), r))"


FOUR = "input a : 0e + 1o\n input b : 0e + 1o\n input c : 0e + 1o\n input d : 0e + 1o"


def test_spelling_round_trips_through_the_tree_option() -> None:
    """Every tree over four inputs, spelled and written as ``tree = ...``, is the basis the checker lowers."""
    for tree in trees.all_trees([0, 1, 2, 3]):
        spelled = trees.spell(tree, ["a", "b", "c", "d"])
        d = api.lower_source(f"diagram F() {{ {FOUR}\n output y = fuse(a, b, c, d) -> 0e + 1o [tree = {spelled}] }}")
        op = d.op("y")
        assert isinstance(op, ir.Fuse)
        assert (op.basis, op.tree, op.labels) == (tree, spelled, ("a", "b", "c", "d"))


THREE = "input a : 2x(0e + 1o)\n input b : 2x(0e + 1o)\n input c : 2x(0e + 1o)"


def fuse_choice(options: str = "") -> FuseChoice:
    d = api.lower_source(f"diagram F() {{ {THREE}\n output y = fuse(a, b, c) -> 2x(0e + 1o){options} }}")
    return make_plan(d).fusions["y"].choice


def test_the_planner_prices_every_spelled_tree() -> None:
    c = fuse_choice()
    assert list(c.seconds) == ["tree ((a, b), c)", "tree ((a, c), b)", "tree (a, (b, c))", "folded"]
    assert (c.basis, c.enumerated, c.fixed, c.dropped, c.lmax) == ("((a, b), c)", True, None, (), None)


def test_a_written_tree_is_the_only_tree() -> None:
    c = fuse_choice(" [tree = (a, (b, c))]")
    assert list(c.seconds) == ["tree (a, (b, c))", "folded"]
    assert (c.basis, c.fixed) == ("(a, (b, c))", "tree = ... pins the tree")


def test_lmax_that_drops_irreps_fixes_the_tree() -> None:
    """``lmax = 0`` drops 1o, 1e and 2e at the internal node: other trees would span another space."""
    c = fuse_choice(" [lmax = 0]")
    assert list(c.seconds) == ["tree ((a, b), c)", "folded"]
    assert (c.lmax, c.dropped) == (0, ("1o", "1e", "2e"))
    assert c.fixed == "with lmax dropping irreps, trees span different spaces"


def test_lmax_that_drops_nothing_keeps_every_tree() -> None:
    c = fuse_choice(" [lmax = 2]")  # 1 x 1 reaches 2 at most: nothing is dropped
    assert (len(c.seconds), c.dropped, c.fixed) == (4, (), None)


def test_unknown_fuse_evaluation_is_an_argument_error() -> None:
    d = api.lower_source(f"diagram F() {{ {THREE}\n output y = fuse(a, b, c) -> 2x(0e + 1o) }}")
    with pytest.raises(FdgArgumentError) as err:
        make_plan(d, {"y": Pin("tree ((b, a), c)")})
    assert err.value.message == (
        "cannot pin y to 'tree ((b, a), c)': its evaluations are "
        "'tree ((a, b), c)', 'tree ((a, c), b)', 'tree (a, (b, c))', 'folded'"
    )


@pytest.mark.parametrize("form", [None, "dense", "split", "sparse"])
def test_every_evaluation_computes_the_same_numbers(form: str | None) -> None:
    """The weights belong to the basis tree's paths: evaluating another tree, or the folded tensor, in any form of
    products, gives the same outputs (float64, 1e-10)."""
    source = f"diagram F() {{ {THREE}\n output y = fuse(a, b, c) -> 2x(0e + 1o) }}"
    free = fdg.compile(source).double()
    inputs = random_inputs(free, generator=5)
    expected = free(**inputs)
    for evaluation in fuse_choice().seconds:
        pin = evaluation if form is None else f"{evaluation}:{form}"
        assert fdg.build(source, pin={"y": pin}).plan.fusions["y"].choice.chosen == evaluation
        module = fdg.compile(source, pin={"y": pin}).double()
        module.load_state_dict(dict(free.named_parameters()), strict=False)
        torch.testing.assert_close(module(**inputs), expected, rtol=1e-10, atol=1e-10, msg=pin)
