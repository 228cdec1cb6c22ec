"""The native channel-wise kernel (``fdg.runtime.channelwise_op``) against a plain einsum reference, its derivatives to
second order, its registration as a torch custom op, and the fallback where it cannot be built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from fdg.runtime import Irreps, channelwise, channelwise_available, native
from fdg.runtime.channelwise_op import load, table
from fdg.runtime.grouped import coupling_matrix

pytestmark = pytest.mark.skipif(not load(), reason=native.status())


def _case(muls: tuple[int, ...], sh: int, shared: bool, dtype: torch.dtype = torch.float64, n: int = 5):
    """A uvu coupling of ``a = sum_l muls[l] x l`` with ``sh(sh)``, every path, and random operands."""
    a = Irreps([(mul, (l, (-1) ** l)) for l, mul in enumerate(muls)])
    b = Irreps.spherical_harmonics(sh)
    offsets = [0]
    for _, ir in b:
        offsets.append(offsets[-1] + ir.dim)
    paths = []  # (i1, i2, output irrep)
    for i1, (_, ir1) in enumerate(a):
        for i2, (_, ir2) in enumerate(b):
            for ir3 in ir1 * ir2:
                paths.append((i1, i2, ir3))
    outputs = sorted({(i1, ir3) for i1, _, ir3 in paths}, key=lambda o: (o[1].l, o[1].p, o[0]))
    y_irreps = Irreps([(a[i1].mul, ir3) for i1, ir3 in outputs])
    weight_offsets, total = [], 0
    for i1, _, _ in paths:
        weight_offsets.append(total)
        total += a[i1].mul
    recipe, blocks, members = [], [], {}
    for p, (i1, _, ir3) in enumerate(paths):
        members.setdefault((outputs.index((i1, ir3)), i1), []).append(p)
    for (i_out, i1), ps in sorted(members.items()):
        recipe.append(
            tuple((a[i1].ir.l, b[paths[p][1]].ir.l, y_irreps[i_out].ir.l, offsets[paths[p][1]], 0.7 + p) for p in ps)
        )
        blocks.append((i1, i_out, tuple(weight_offsets[p] for p in ps)))
    K = coupling_matrix(b.dim, tuple(recipe), dtype=dtype)
    t = table(tuple((m, ir.dim) for m, ir in a), tuple((m, ir.dim) for m, ir in y_irreps), tuple(blocks), K)
    g = torch.Generator().manual_seed(sum(muls) + sh)
    x = torch.randn(n, a.dim, generator=g, dtype=dtype)
    m = torch.randn(n, b.dim, generator=g, dtype=dtype) @ K
    w = torch.randn(*(() if shared else (n,)), total, generator=g, dtype=dtype)
    sizes = [a.dim, K.shape[1], total, y_irreps.dim]
    return (x, m, w, t, sizes), (a, y_irreps, tuple(blocks), tuple(recipe))


def _reference(x, m, w, layout):  # type: ignore[no-untyped-def]
    """The coupling block by block with einsums: y[u, k] += sum_i M_p[k, i] w_p[u] x[u, i]."""
    a, y_irreps, blocks, recipe = layout
    n = x.shape[0]
    w = w.expand(n, -1)
    a_off = [0, *torch.tensor([mul * ir.dim for mul, ir in a]).cumsum(0).tolist()]
    y_off = [0, *torch.tensor([mul * ir.dim for mul, ir in y_irreps]).cumsum(0).tolist()]
    y = x.new_zeros(n, y_irreps.dim)
    column = 0
    for (i1, i_out, w_offsets), members in zip(blocks, recipe, strict=True):
        mul, d1, d3 = a[i1].mul, a[i1].ir.dim, y_irreps[i_out].ir.dim
        width = len(members) * d1
        matrices = m[:, column : column + d3 * width].reshape(n, d3, len(members), d1)
        xs = x[:, a_off[i1] : a_off[i1 + 1]].reshape(n, mul, d1)
        for j, w_off in enumerate(w_offsets):
            term = torch.einsum("nki,nu,nui->nuk", matrices[:, :, j], w[:, w_off : w_off + mul], xs)
            y[:, y_off[i_out] : y_off[i_out + 1]] += term.reshape(n, mul * d3)
        column += d3 * width
    return y


@pytest.mark.parametrize("muls", [(1, 1, 1), (3, 2, 5), (32, 32, 32), (17, 48, 64), (0, 4, 0)])
@pytest.mark.parametrize("shared", [False, True])
def test_kernel_equals_einsum_reference(muls: tuple[int, ...], shared: bool) -> None:
    # multiplicities 17, 48, 64 go through every channel width of the kernel (32, 16, 4, 1)
    (x, m, w, t, sizes), layout = _case(muls, 2, shared)
    torch.testing.assert_close(channelwise(x, m, w, t, sizes), _reference(x, m, w, layout), atol=1e-12, rtol=1e-12)


def test_float32_and_threads() -> None:
    (x, m, w, t, sizes), layout = _case((32, 16, 8, 4), 3, False, torch.float32, n=300)
    expected = _reference(x.double(), m.double(), w.double(), layout)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            results.append(channelwise(x, m, w, t, sizes))
    finally:
        torch.set_num_threads(threads)
    for y in results:  # rows are independent: the same numbers whichever thread computes them
        assert y.dtype == torch.float32 and torch.equal(y, results[0])
    torch.testing.assert_close(results[0].double(), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("shared", [False, True])
def test_first_and_second_derivatives(shared: bool) -> None:
    (x, m, w, t, sizes), _ = _case((2, 3, 1), 2, shared, n=3)
    operands = tuple(v.clone().requires_grad_() for v in (x, m, w))

    def f(x: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return channelwise(x, m, w, t, sizes)

    assert torch.autograd.gradcheck(f, operands)
    assert torch.autograd.gradgradcheck(f, operands)


def test_gradients_of_the_shared_weights_sum_over_rows_and_threads() -> None:
    (x, m, w, t, sizes), layout = _case((5, 7, 3), 2, True, n=400)
    w = w.clone().requires_grad_()
    w_ref = w.detach().clone().requires_grad_()
    g = torch.randn(400, sizes[3], dtype=torch.float64)
    (got,) = torch.autograd.grad(channelwise(x, m, w, t, sizes), w, g)
    (want,) = torch.autograd.grad(_reference(x, m, w_ref, layout), w_ref, g)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10)


def test_custom_op_registration() -> None:
    (x, m, w, t, sizes), _ = _case((2, 1, 2), 1, False, n=4)
    for args in ((x, m, w, None), (None, m, w, torch.randn(4, sizes[3], dtype=torch.float64))):
        operands = tuple(v.clone().requires_grad_() if v is not None else None for v in args)
        torch.library.opcheck(torch.ops.fdg.channelwise, (*operands, None, None, 4, 4, t, sizes, False))


def test_empty_batch() -> None:
    (x, m, w, t, sizes), _ = _case((2, 1, 2), 1, False, n=0)
    assert channelwise(x, m, w, t, sizes).shape == (0, sizes[3])


def test_mixed_dtypes_are_refused() -> None:
    (x, m, w, t, sizes), _ = _case((2, 1, 2), 1, False)
    with pytest.raises(TypeError, match="float32 or float64"):
        channelwise(x, m.float(), w, t, sizes)


def test_availability_follows_device_and_dtype() -> None:
    assert channelwise_available(torch.zeros(1))
    assert not channelwise_available(torch.zeros(1, dtype=torch.float16))
    assert not channelwise_available(torch.zeros(1, device="meta"))


_FALLBACK = """
import torch, fdg
from fdg.runtime import native
print(native.status())
m = fdg.compile('diagram C() { input x : 2x0e + 2x1o over edge\\n input v : 1o over edge\\n'
                ' input R : weights over edge\\n'
                ' output y = couple(x, sh(v, 2)) -> 2x0e + 2x1o + 2x1e + 2x2e [mode = uvu, weights = R] }')
x, v = torch.randn(5, 8), torch.randn(5, 3)
print(fdg.runtime.channelwise_available(x), tuple(m(x, v, torch.randn(5, m.weight_numel['R'])).shape))
"""


@pytest.mark.parametrize(
    ("env", "status"),
    [({"FDG_NATIVE": "0"}, "disabled by FDG_NATIVE=0"), ({"CXX": "false"}, "compiling the native kernels with false")],
)
def test_without_native_kernels_modules_take_the_torch_lowering(env: dict[str, str], status: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    environment = {**os.environ, "FDG_CACHE_DIR": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", _FALLBACK], capture_output=True, text=True, env=environment, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("native kernels unavailable: " + status)
    assert lines[1] == "False (5, 24)"


def test_shapes_that_disagree_with_the_table_are_refused() -> None:
    (x, m, w, t, sizes), _ = _case((2, 1, 2), 1, False)
    with pytest.raises(ValueError, match="operand x has shape"):
        channelwise(x[:, :-1], m, w, t, sizes)
    with pytest.raises(ValueError, match="the table does not describe"):
        channelwise(x[:, :-1], m, w, t, [sizes[0] - 1, *sizes[1:]])


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda t: t[:-1], "its length does not match its counts"),
        (lambda t: torch.cat([t[:3], t.new_tensor([-1]), t[4:]]), "negative"),
        (lambda t: torch.cat([t[:-1], t.new_tensor([10**6])]), "an entry lies outside"),  # a column of m
        (lambda t: torch.cat([t[:8], t.new_tensor([10**6]), t[9:]]), "a path lies outside"),  # x offset
        (lambda t: torch.cat([t[:14], t.new_tensor([10**6]), t[15:]]), "a path's entries lie outside"),
        (lambda t: t[:5], "shorter than its header"),
    ],
)
def test_malformed_tables_are_refused_before_the_kernel_runs(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    (x, m, w, t, sizes), _ = _case((2, 1, 2), 1, False)
    with pytest.raises(ValueError, match="the table is malformed: .*" + why):
        channelwise(x, m, w, edit(t), sizes)


# ---- fused index access: x read through an index, y summed by one ------------------------------------------------


def _indexed(shared: bool, n: int = 40, nodes: int = 7, dtype: torch.dtype = torch.float64):  # type: ignore[no-untyped-def]
    """A coupling over ``n`` edges of node features ``h [nodes, X]``; node ``nodes - 1`` has no edge into it."""
    (_, m, w, t, sizes), layout = _case((3, 2, 5), 2, shared, dtype, n=n)
    g = torch.Generator().manual_seed(7)
    h = torch.randn(nodes, sizes[0], generator=g, dtype=dtype)
    src = torch.randint(0, nodes, (n,), generator=g)
    dst = torch.randint(0, nodes - 1, (n,), generator=g)
    return h, src, dst, (m, w, t, sizes), layout


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize(("gather", "scatter"), [(True, False), (False, True), (True, True)])
def test_fused_gather_and_scatter_equal_the_explicit_index_ops(shared: bool, gather: bool, scatter: bool) -> None:
    h, src, dst, (m, w, t, sizes), layout = _indexed(shared)
    x = h if gather else h[src]
    got = channelwise(x, m, w, t, sizes, src if gather else None, dst if scatter else None, len(h))
    per_edge = _reference(h[src], m, w, layout)
    want = per_edge.new_zeros(len(h), sizes[3]).index_add(0, dst, per_edge) if scatter else per_edge
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shared", [False, True])
def test_fused_index_access_derivatives_to_second_order(shared: bool) -> None:
    h, src, dst, (m, w, t, sizes), _ = _indexed(shared, n=6, nodes=4)
    operands = tuple(v.clone().requires_grad_() for v in (h, m, w))

    def f(h: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return channelwise(h, m, w, t, sizes, src, dst, 4)

    assert torch.autograd.gradcheck(f, operands)
    assert torch.autograd.gradgradcheck(f, operands)


@pytest.mark.parametrize("shared", [False, True])  # per-row weights: the one-pass backward
def test_fused_index_access_gives_the_same_bits_at_any_thread_count(shared: bool) -> None:
    """Sums by an index run over each output row's rows in order, and shared-weight gradients over fixed chunks."""
    h, src, dst, (m, w, t, sizes), _ = _indexed(shared, n=3000, nodes=50, dtype=torch.float32)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
            y = channelwise(hh, m, ww, t, sizes, src, dst, len(h))
            results.append((y, *torch.autograd.grad(y, (hh, ww), torch.ones_like(y))))
    finally:
        torch.set_num_threads(threads)
    for got in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(got, results[0], strict=True))


@pytest.mark.parametrize("bad", [-1, 7, 1 << 40])
def test_indices_out_of_range_are_refused_before_any_read(bad: int) -> None:
    h, src, dst, (m, w, t, sizes), _ = _indexed(False)
    for index in (src, dst):
        index[3] = bad
        with pytest.raises(IndexError, match="out of range"):
            channelwise(h, m, w, t, sizes, src, dst, len(h))
        index[3] = 0


def test_custom_op_registration_with_indices() -> None:
    h, src, dst, (m, w, t, sizes), _ = _indexed(False, n=6, nodes=4)
    operands = tuple(v.clone().requires_grad_() for v in (h, m, w))
    torch.library.opcheck(torch.ops.fdg.channelwise, (*operands, None, src, dst, 4, 4, t, sizes, False))


def test_a_scatter_of_no_rows_is_zero() -> None:
    h, src, dst, (m, w, t, sizes), _ = _indexed(False)
    y = channelwise(h, m[:0], w[:0], t, sizes, src[:0], dst[:0], len(h))
    assert y.shape == (len(h), sizes[3]) and torch.equal(y, torch.zeros_like(y))


@pytest.mark.parametrize("indexed", [False, True])
def test_the_one_pass_backward_equals_the_three_products(indexed: bool) -> None:
    """``fdg::channelwise_grads`` (the backward of a forward with per-row weights) against the op with x, m and w
    missing in turn: the same updates in the same order (the compiler may fuse a multiply and an add differently in
    the two, so equal to float32 rounding, not to the bit)."""
    h, src, dst, (m, w, t, sizes), _ = _indexed(False, n=300, nodes=20, dtype=torch.float32)
    x, x_index, y_index = (h, src, dst) if indexed else (h[src], None, None)
    y = torch.randn(len(h) if indexed else 300, sizes[3])
    rows = (len(h), len(h))
    got = torch.ops.fdg.channelwise_grads(x, m, w, y, x_index, y_index, *rows, t, sizes)
    args = [x, m, w, y]
    for slot, g in enumerate(got):
        single = list(args)
        single[slot] = None
        expected = torch.ops.fdg.channelwise(*single, x_index, y_index, *rows, t, sizes, False)
        torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    operands = tuple(v.clone().requires_grad_() for v in (x, m, w, y))
    torch.library.opcheck(torch.ops.fdg.channelwise_grads, (*operands, x_index, y_index, *rows, t, sizes))
