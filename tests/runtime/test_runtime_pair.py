"""The native kernel's paired tables (``fdg.runtime.channelwise_op.Pair``): the 5-linear form of a fuse tree
``((x, z), b)`` whose left child is computed per row inside the kernel, against an einsum reference, with every
operand's derivative to second order, the three indices fused, and its checks."""

from __future__ import annotations

import pytest
import torch
from channelwise_cases import case, paired, paired_reference

from fdg.runtime import channelwise, native
from fdg.runtime.channelwise_op import load

pytestmark = pytest.mark.skipif(not load(), reason=native.status())


@pytest.mark.parametrize("channels", [1, 17, 32, 48])  # every channel width of the kernel (32, 16, 4, 1)
@pytest.mark.parametrize("shared", [False, True])
def test_paired_kernel_equals_einsum_reference(channels: int, shared: bool) -> None:
    (x, z, m, w, t, sizes), layout = paired(channels, 2, shared)
    got = channelwise(x, m, w, t, sizes, z=z)
    torch.testing.assert_close(got, paired_reference(x, z, m, w, layout), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shared", [False, True])
def test_paired_gradients_of_every_operand_equal_the_reference(shared: bool) -> None:
    (x, z, m, w, t, sizes), layout = paired(5, 2, shared, n=7)
    ours = [v.clone().requires_grad_() for v in (x, z, m, w)]
    theirs = [v.clone().requires_grad_() for v in (x, z, m, w)]
    y = channelwise(ours[0], ours[2], ours[3], t, sizes, z=ours[1])
    g = torch.randn_like(y)
    got = torch.autograd.grad(y, ours, g)
    want = list(torch.autograd.grad(paired_reference(*theirs, layout), theirs, g))
    # m = b @ K: the kernel leaves the columns K makes zero out (their gradient never reaches b)
    support = (layout[0][4] != 0).any(0)
    want[2] = want[2] * support
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shared", [False, True])
def test_paired_derivatives_to_second_order(shared: bool) -> None:
    (x, z, m, w, t, sizes), _ = paired(2, 1, shared, n=3, pairs=8)
    operands = tuple(v.clone().requires_grad_() for v in (x, z, m, w))

    def f(x: torch.Tensor, z: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return channelwise(x, m, w, t, sizes, z=z)

    assert torch.autograd.gradcheck(f, operands)
    assert torch.autograd.gradgradcheck(f, operands)


def _graph(n: int = 40, nodes: int = 7, dtype: torch.dtype = torch.float64, channels: int = 3):  # type: ignore[no-untyped-def]
    """The fuse of an edge's two ends: x = h[src], z = g[dst], summed by dst (node ``nodes - 1`` has no edge)."""
    (x, z, m, w, t, sizes), layout = paired(channels, 2, False, dtype, n=n)
    gen = torch.Generator().manual_seed(3)
    h = torch.randn(nodes, x.shape[1], generator=gen, dtype=dtype)
    k = torch.randn(nodes, z.shape[1], generator=gen, dtype=dtype)
    src = torch.randint(0, nodes, (n,), generator=gen)
    dst = torch.randint(0, nodes - 1, (n,), generator=gen)
    return h, k, src, dst, (m, w, t, sizes), layout


def _fused(h, k, src, dst, m, w, t, sizes):  # type: ignore[no-untyped-def]
    return channelwise(h, m, w, t, sizes, src, dst, len(h), z=k, z_index=dst)


def test_paired_gathers_and_scatter_equal_the_explicit_index_ops() -> None:
    h, k, src, dst, (m, w, t, sizes), layout = _graph()
    per_edge = paired_reference(h[src], k[dst], m, w, layout)
    want = per_edge.new_zeros(len(h), sizes[3]).index_add(0, dst, per_edge)
    torch.testing.assert_close(_fused(h, k, src, dst, m, w, t, sizes), want, atol=1e-12, rtol=1e-12)


def test_paired_index_access_derivatives_to_second_order() -> None:
    h, k, src, dst, (m, w, t, sizes), _ = _graph(n=6, nodes=4, channels=2)
    operands = tuple(v.clone().requires_grad_() for v in (h, k, m, w))

    def f(h: torch.Tensor, k: torch.Tensor, m: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return _fused(h, k, src, dst, m, w, t, sizes)

    assert torch.autograd.gradcheck(f, operands)
    assert torch.autograd.gradgradcheck(f, operands)


def test_paired_index_access_gives_the_same_bits_at_any_thread_count() -> None:
    h, k, src, dst, (m, w, t, sizes), _ = _graph(n=3000, nodes=50, dtype=torch.float32, channels=32)
    results = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 2, 3):
            torch.set_num_threads(count)
            operands = [v.clone().requires_grad_() for v in (h, k, m, w)]
            y = _fused(operands[0], operands[1], src, dst, operands[2], operands[3], t, sizes)
            results.append((y, *torch.autograd.grad(y, operands, torch.ones_like(y))))
    finally:
        torch.set_num_threads(threads)
    for got in results[1:]:
        assert all(torch.equal(a, b) for a, b in zip(got, results[0], strict=True))


@pytest.mark.parametrize("bad", [-1, 7, 1 << 40])
def test_a_z_index_out_of_range_is_refused_before_any_read(bad: int) -> None:
    h, k, src, dst, (m, w, t, sizes), _ = _graph()
    z_index = dst.clone()
    z_index[3] = bad
    with pytest.raises(IndexError, match="out of range"):
        channelwise(h, m, w, t, sizes, src, dst, len(h), z=k, z_index=z_index)


def test_paired_custom_op_registration() -> None:
    h, k, src, dst, (m, w, t, sizes), _ = _graph(n=6, nodes=4, channels=2)
    hg, kg, mg, wg = (v.clone().requires_grad_() for v in (h, k, m, w))
    op_sizes = [sizes[0], k.shape[1], *sizes[1:]]
    rows = (4, 4, 4)
    torch.library.opcheck(torch.ops.fdg.channelwise, (hg, kg, mg, wg, None, src, dst, dst, *rows, t, op_sizes, False))
    y = torch.randn(4, sizes[3], dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(torch.ops.fdg.channelwise_grads, (hg, kg, mg, wg, y, src, dst, dst, *rows, t, op_sizes))


def test_z_with_a_table_that_does_not_pair_it_is_refused() -> None:
    (x, m, w, t, sizes), _ = case((2, 1, 2), 1, False)
    with pytest.raises(ValueError, match="the table does not pair x with z"):
        torch.ops.fdg.channelwise(x, x, m, w, None, None, None, None, 5, 5, 5, t, [sizes[0], 0, *sizes[1:]], False)


def test_a_pair_outside_its_operands_is_refused() -> None:
    h, k, src, dst, (m, w, t, sizes), _ = _graph()
    bad = t.clone()
    bad[-4] = 10**6  # the last pair's offset in t
    with pytest.raises(ValueError, match="the table is malformed: a pair lies outside"):
        channelwise(h, m, w, bad, sizes, src, dst, len(h), z=k, z_index=dst)
