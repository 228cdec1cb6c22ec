"""The run-time pieces of the grouped lowering that generated code calls: layouts and the sparse product."""

from __future__ import annotations

import pytest
import torch

from fdg.runtime.grouped import (
    column_support,
    coupling_entries,
    coupling_matrix,
    coupling_nonzeros,
    permute_columns,
    sparse_matmul,
    transposition,
)


def test_transposition_takes_ir_mul_to_mul_ir() -> None:
    blocks = ((3, 1), (2, 3), (4, 5))
    x = torch.randn(6, 3 + 6 + 20, dtype=torch.float64)
    index = transposition(blocks)
    y = permute_columns(x, index, torch.argsort(index))
    # block by block, the [dim, mul] layout read as [mul, dim]
    offset = 0
    for mul, dim in blocks:
        block = x[:, offset : offset + mul * dim].reshape(6, dim, mul)
        assert torch.equal(y[:, offset : offset + mul * dim], block.transpose(1, 2).reshape(6, mul * dim))
        offset += mul * dim


def test_permute_columns_is_differentiable_twice() -> None:
    index = transposition(((2, 3), (1, 5)))
    inverse = torch.argsort(index)
    x = torch.randn(4, 11, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 11, dtype=torch.float64)

    def f(x: torch.Tensor) -> torch.Tensor:  # a non-linear function so that second derivatives are not zero
        return (permute_columns(x, index, inverse) ** 3 * weight).sum(1)

    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))
    grad = torch.autograd.grad(permute_columns(x, index, inverse), x, weight)[0]
    assert torch.equal(grad, weight[:, inverse])


def test_sparse_matmul_equals_the_dense_product() -> None:
    recipe = (((1, 1, 0, 1, 0.5),), ((1, 2, 1, 4, 1.5), (1, 1, 1, 1, 0.25)))
    b = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    K = coupling_matrix(9, recipe, dtype=torch.float64)
    index, values = coupling_entries(9, recipe, dtype=torch.float64)
    assert index.shape[1] < K.numel()  # CG zeros are skipped
    assert torch.allclose(sparse_matmul(b, index, values, K.shape[1]), b @ K, atol=1e-14)
    assert torch.autograd.gradgradcheck(lambda b: sparse_matmul(b, index, values, K.shape[1]) ** 2, (b,))


@pytest.mark.parametrize(
    "recipe",
    [
        (((1, 1, 0, 1, 0.5),), ((1, 2, 1, 4, 1.5), (1, 1, 1, 1, 0.25))),
        (((2, 2, 2, 4, 1.0), (2, 1, 2, 1, 1.0), (2, 0, 2, 0, 2.0)), ((3, 2, 3, 4, 1.0),), ((2, 2, 4, 4, 0.3),)),
    ],
)
def test_exact_support_is_the_support_of_the_matrix(recipe: tuple) -> None:
    # the plan counts the kernel's work from the exact tables; the kernel's table reads the float matrix
    K = coupling_matrix(9, recipe, dtype=torch.float64)
    assert column_support(recipe) == tuple((K != 0).any(0).tolist())
    assert coupling_nonzeros(recipe) == coupling_entries(9, recipe)[0].shape[1] == int((K != 0).sum())
