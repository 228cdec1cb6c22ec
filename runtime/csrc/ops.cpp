// fdg's torch ops, registered in C++: fdg::channelwise and fdg::channelwise_grads (CPU).  Loading the shared library
// (torch.ops.load_library) is all a process needs to run them, so a model exported with torch.export or compiled
// by AOTInductor runs where fdg's Python is not installed.  fdg's Python adds their shape functions (for tracing)
// and derivatives (fdg/runtime/channelwise_op.py).
//
// The ops check what the kernel would misread (dtypes, shapes, the table, indices) and raise the usual Python
// errors: TypeError, ValueError, and IndexError for an index out of range, before the kernel reads anything.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "channelwise.h"

namespace {

using Maybe = std::optional<at::Tensor>;

// The rows of a call (n) and of each operand (x and y: their own where indexed), and each operand's shape.
struct Shape {
  int64_t n = 0;
  std::array<int64_t, 4> rows{};
  std::vector<int64_t> sizes;
  bool shared;

  Shape(const std::array<Maybe, 4>& operands, const Maybe& x_index, const Maybe& y_index, int64_t x_rows,
        int64_t y_rows, at::IntArrayRef sizes_, bool shared_)
      : sizes(sizes_.vec()), shared(shared_) {
    TORCH_CHECK_VALUE(sizes.size() == 4, "fdg::channelwise: sizes must be [X, M, W, Y], got ", sizes_);
    const std::array<const Maybe*, 4> indices = {&x_index, nullptr, nullptr, &y_index};
    bool found = false;
    for (const Maybe* index : {&x_index, &y_index})
      if (!found && index->has_value()) n = (*index)->size(0), found = true;
    for (int slot = 0; slot < 4 && !found; ++slot) {
      const bool direct = operands[slot].has_value() && !(indices[slot] && indices[slot]->has_value()) &&
                          !(slot == 2 && shared);
      if (direct && operands[slot]->dim() > 0) n = operands[slot]->size(0), found = true;
    }
    rows = {x_index.has_value() ? x_rows : n, n, n, y_index.has_value() ? y_rows : n};
  }

  std::vector<int64_t> of(int slot) const {
    if (slot == 2 && shared) return {sizes[2]};
    return {rows[slot], sizes[slot]};
  }
};

void check(const std::array<Maybe, 4>& operands, const Maybe& x_index, const Maybe& y_index, const at::Tensor& table,
           const Shape& shape) {
  std::vector<at::ScalarType> dtypes;
  for (const Maybe& t : operands)
    if (t.has_value()) dtypes.push_back(t->scalar_type());
  TORCH_CHECK_VALUE(!dtypes.empty(), "fdg::channelwise: no operand is given");
  bool same = dtypes[0] == at::kFloat || dtypes[0] == at::kDouble;
  for (at::ScalarType d : dtypes) same = same && d == dtypes[0];
  TORCH_CHECK_TYPE(same, "fdg::channelwise: operands must all be float32 or float64, got ", dtypes);
  for (const Maybe& t : operands)
    TORCH_CHECK(!t.has_value() || t->device().is_cpu(), "fdg::channelwise: operands must be on the CPU");
  TORCH_CHECK_VALUE(table.scalar_type() == at::kLong && table.dim() == 1 && table.is_contiguous() &&
                        table.device().is_cpu(),
                    "fdg::channelwise: the table must be a contiguous int64 vector on the CPU");
  const char* bad = fdg::table_error(table.data_ptr<int64_t>(), table.numel());
  TORCH_CHECK_VALUE(bad == nullptr, "fdg::channelwise: the table is malformed: ", bad ? bad : "");
  const int64_t* header = table.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(std::vector<int64_t>(header + 4, header + 8) == shape.sizes,
                    "fdg::channelwise: the table does not describe operands of sizes ", shape.sizes);
  const std::array<std::pair<const char*, const Maybe*>, 2> indices = {{{"x", &x_index}, {"y", &y_index}}};
  for (const auto& [name, index] : indices)
    TORCH_CHECK_VALUE(!index->has_value() || ((*index)->scalar_type() == at::kLong && (*index)->dim() == 1 &&
                                              (*index)->size(0) == shape.n && (*index)->device().is_cpu()),
                      "fdg::channelwise: the index of ", name, " must be int64 of shape [", shape.n, "]");
  for (int slot = 0; slot < 4; ++slot)
    TORCH_CHECK_VALUE(!operands[slot].has_value() || operands[slot]->sizes() == at::IntArrayRef(shape.of(slot)),
                      "fdg::channelwise: operand ", "xmwy"[slot], " has shape ", operands[slot]->sizes(), ", not ",
                      shape.of(slot));
  for (int64_t rows : shape.rows) TORCH_CHECK_VALUE(rows >= 0, "fdg::channelwise: a row count is negative");
}

// One kernel call computing operand `mode` into outs[0] (kB: the gradients of x, m and w into outs[0..2]).
template <typename T>
void run(int64_t mode, const std::array<Maybe, 4>& operands, const Maybe& x_index, const Maybe& y_index,
         const at::Tensor& table, const Shape& shape, std::vector<at::Tensor>& outs) {
  std::array<at::Tensor, 4> dense;
  std::array<const T*, 4> data{};
  for (int slot = 0; slot < 4; ++slot)
    if (operands[slot].has_value()) dense[slot] = operands[slot]->contiguous(), data[slot] = dense[slot].data_ptr<T>();
  const at::Tensor xi = x_index.has_value() ? x_index->contiguous() : at::Tensor();
  const at::Tensor yi = y_index.has_value() ? y_index->contiguous() : at::Tensor();
  const fdg::Operands<T> o{shape.n,
                           data[0],
                           data[1],
                           data[2],
                           data[3],
                           shape.shared,
                           xi.defined() ? xi.data_ptr<int64_t>() : nullptr,
                           yi.defined() ? yi.data_ptr<int64_t>() : nullptr,
                           xi.defined() ? shape.rows[0] : -1,
                           yi.defined() ? shape.rows[3] : -1};
  T* gm = outs.size() > 1 ? outs[1].data_ptr<T>() : nullptr;
  T* gw = outs.size() > 2 ? outs[2].data_ptr<T>() : nullptr;
  const int64_t failed = fdg::channelwise<T>(table.data_ptr<int64_t>(), mode, o, outs[0].data_ptr<T>(), gm, gw,
                                             at::get_num_threads());
  TORCH_CHECK_INDEX(failed != 1, "fdg::channelwise: an index is out of range (x has ", shape.rows[0], " rows, y ",
                    shape.rows[3], ")");
  TORCH_CHECK_VALUE(failed == 0, "fdg::channelwise: the gradients at once need per-row weights");
}

void dispatch(int64_t mode, const std::array<Maybe, 4>& operands, const Maybe& x_index, const Maybe& y_index,
              const at::Tensor& table, const Shape& shape, std::vector<at::Tensor>& outs) {
  if (outs[0].scalar_type() == at::kFloat) run<float>(mode, operands, x_index, y_index, table, shape, outs);
  else run<double>(mode, operands, x_index, y_index, table, shape, outs);
}

// The operand missing from (x, m, w, y): the gradient of the 4-linear form with respect to it.
at::Tensor channelwise(const Maybe& x, const Maybe& m, const Maybe& w, const Maybe& y, const Maybe& x_index,
                       const Maybe& y_index, int64_t x_rows, int64_t y_rows, const at::Tensor& table,
                       at::IntArrayRef sizes, bool shared) {
  const std::array<Maybe, 4> operands = {x, m, w, y};
  int missing = -1, absent = 0;
  for (int slot = 0; slot < 4; ++slot)
    if (!operands[slot].has_value()) missing = slot, ++absent;
  TORCH_CHECK_VALUE(absent == 1, "fdg::channelwise: exactly one of x, m, w and y must be missing, not ", absent);
  const Shape shape(operands, x_index, y_index, x_rows, y_rows, sizes, shared);
  check(operands, x_index, y_index, table, shape);
  const at::Tensor& like = operands[(missing + 1) % 4].value();
  std::vector<at::Tensor> outs = {at::empty(shape.of(missing), like.options())};
  dispatch(missing, operands, x_index, y_index, table, shape, outs);
  return outs[0];
}

// The gradients of x, m and per-row w at once, given y: what channelwise returns with each of them missing.
std::tuple<at::Tensor, at::Tensor, at::Tensor> channelwise_grads(const at::Tensor& x, const at::Tensor& m,
                                                                 const at::Tensor& w, const at::Tensor& y,
                                                                 const Maybe& x_index, const Maybe& y_index,
                                                                 int64_t x_rows, int64_t y_rows,
                                                                 const at::Tensor& table, at::IntArrayRef sizes) {
  const std::array<Maybe, 4> operands = {x, m, w, y};
  const Shape shape(operands, x_index, y_index, x_rows, y_rows, sizes, false);
  check(operands, x_index, y_index, table, shape);
  std::vector<at::Tensor> outs;
  for (int slot = 0; slot < 3; ++slot) outs.push_back(at::empty(shape.of(slot), x.options()));
  dispatch(fdg::kB, operands, x_index, y_index, table, shape, outs);
  return {outs[0], outs[1], outs[2]};
}

}  // namespace

TORCH_LIBRARY(fdg, m) {
  m.def(
      "channelwise(Tensor? x, Tensor? m, Tensor? w, Tensor? y, Tensor? x_index, Tensor? y_index, SymInt x_rows, "
      "SymInt y_rows, Tensor table, int[] sizes, bool shared) -> Tensor");
  m.def(
      "channelwise_grads(Tensor x, Tensor m, Tensor w, Tensor y, Tensor? x_index, Tensor? y_index, SymInt x_rows, "
      "SymInt y_rows, Tensor table, int[] sizes) -> (Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fdg, CPU, m) {
  m.impl("channelwise", &channelwise);
  m.impl("channelwise_grads", &channelwise_grads);
}
