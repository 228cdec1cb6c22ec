"""The native channel-wise kernel (``fdg.runtime.channelwise_op``) against a plain einsum reference, its derivatives to
second order, its registration as a torch custom op, and the fallback where it cannot be built."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from channelwise_cases import case as _case
from channelwise_cases import op_sizes as _op_sizes
from channelwise_cases import reference as _reference

from fdg.runtime import channelwise, channelwise_available, native
from fdg.runtime.channelwise_op import load

pytestmark = pytest.mark.skipif(not load(), reason=native.status())


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
        x_, m_, w_, y_ = operands
        opcheck = (x_, None, m_, w_, y_, None, None, None, 4, 0, 4, t, _op_sizes(sizes), False)
        torch.library.opcheck(torch.ops.fdg.channelwise, opcheck)


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
        (lambda t: torch.cat([t[:13], t.new_tensor([10**6]), t[14:]]), "a path lies outside"),  # x offset
        (lambda t: torch.cat([t[:19], t.new_tensor([10**6]), t[20:]]), "a path's entries lie outside"),
        (lambda t: torch.cat([t[:12], t.new_tensor([1]), t[13:]]), "a table without z"),
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
    h_, m_, w_ = operands
    args = (h_, None, m_, w_, None, src, None, dst, 4, 0, 4, t, _op_sizes(sizes), False)
    torch.library.opcheck(torch.ops.fdg.channelwise, args)


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
    rows, op_sizes = (len(h), 0, len(h)), _op_sizes(sizes)
    got = torch.ops.fdg.channelwise_grads(x, None, m, w, y, x_index, None, y_index, *rows, t, op_sizes)
    args = [x, None, m, w, y]
    for slot, g in zip((0, 2, 3), got, strict=True):
        single = list(args)
        single[slot] = None
        expected = torch.ops.fdg.channelwise(*single, x_index, None, y_index, *rows, t, op_sizes, False)
        torch.testing.assert_close(g, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))
    xg, mg, wg, yg = (v.clone().requires_grad_() for v in (x, m, w, y))
    torch.library.opcheck(
        torch.ops.fdg.channelwise_grads, (xg, None, mg, wg, yg, x_index, None, y_index, *rows, t, op_sizes)
    )
