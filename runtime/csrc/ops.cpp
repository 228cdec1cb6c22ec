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
constexpr int kSlots = 5;  // x, z, m, w, y
constexpr const char* kNames = "xzmwy";
using Operands = std::array<Maybe, kSlots>;

// The three indices of a call: of x, z and y (the slots 0, 1 and 4).
struct Indices {
  Maybe x, z, y;
  const Maybe* of(int slot) const { return slot == 0 ? &x : slot == 1 ? &z : slot == 4 ? &y : nullptr; }
};

// The rows of a call (n) and of each operand (x, z and y: their own where indexed), and each operand's shape.
struct Shape {
  int64_t n = 0;
  std::array<int64_t, kSlots> rows{};
  std::vector<int64_t> sizes;
  bool shared;

  Shape(const Operands& operands, const Indices& indices, std::array<int64_t, 3> indexed_rows, at::IntArrayRef sizes_,
        bool shared_)
      : sizes(sizes_.vec()), shared(shared_) {
    TORCH_CHECK_VALUE(sizes.size() == kSlots, "fdg::channelwise: sizes must be [X, Z, M, W, Y], got ", sizes_);
    bool found = false;
    for (const Maybe* index : {&indices.x, &indices.z, &indices.y})
      if (!found && index->has_value()) n = (*index)->size(0), found = true;
    for (int slot = 0; slot < kSlots && !found; ++slot) {
      const Maybe* index = indices.of(slot);
      const bool direct = operands[slot].has_value() && !(index && index->has_value()) && !(slot == 3 && shared);
      if (direct && operands[slot]->dim() > 0) n = operands[slot]->size(0), found = true;
    }
    rows = {indices.x.has_value() ? indexed_rows[0] : n, indices.z.has_value() ? indexed_rows[1] : n, n, n,
            indices.y.has_value() ? indexed_rows[2] : n};
  }

  std::vector<int64_t> of(int slot) const {
    if (slot == 3 && shared) return {sizes[3]};
    return {rows[slot], sizes[slot]};
  }
};

// Whether the table pairs x with z (a fuse's left child: z is an operand), read after check_table.
bool paired(const at::Tensor& table) { return table.data_ptr<int64_t>()[10] > 0; }

void check_table(const at::Tensor& table, const Shape& shape) {
  TORCH_CHECK_VALUE(table.scalar_type() == at::kLong && table.dim() == 1 && table.is_contiguous() &&
                        table.device().is_cpu(),
                    "fdg::channelwise: the table must be a contiguous int64 vector on the CPU");
  const char* bad = fdg::table_error(table.data_ptr<int64_t>(), table.numel());
  TORCH_CHECK_VALUE(bad == nullptr, "fdg::channelwise: the table is malformed: ", bad ? bad : "");
  const int64_t* header = table.data_ptr<int64_t>();
  const std::vector<int64_t> described = {header[4], header[10], header[5], header[6], header[7]};
  TORCH_CHECK_VALUE(described == shape.sizes, "fdg::channelwise: the table does not describe operands of sizes ",
                    shape.sizes);
}

void check(const Operands& operands, const Indices& indices, const at::Tensor& table, const Shape& shape) {
  std::vector<at::ScalarType> dtypes;
  for (const Maybe& t : operands)
    if (t.has_value()) dtypes.push_back(t->scalar_type());
  TORCH_CHECK_VALUE(!dtypes.empty(), "fdg::channelwise: no operand is given");
  bool same = dtypes[0] == at::kFloat || dtypes[0] == at::kDouble;
  for (at::ScalarType d : dtypes) same = same && d == dtypes[0];
  TORCH_CHECK_TYPE(same, "fdg::channelwise: operands must all be float32 or float64, got ", dtypes);
  for (const Maybe& t : operands)
    TORCH_CHECK(!t.has_value() || t->device().is_cpu(), "fdg::channelwise: operands must be on the CPU");
  check_table(table, shape);
  TORCH_CHECK_VALUE(paired(table) || (!operands[1].has_value() && !indices.z.has_value()),
                    "fdg::channelwise: z is given, but the table does not pair x with z");
  for (int slot : {0, 1, 4}) {
    const Maybe* index = indices.of(slot);
    TORCH_CHECK_VALUE(!index->has_value() || ((*index)->scalar_type() == at::kLong && (*index)->dim() == 1 &&
                                              (*index)->size(0) == shape.n && (*index)->device().is_cpu()),
                      "fdg::channelwise: the index of ", kNames[slot], " must be int64 of shape [", shape.n, "]");
  }
  for (int slot = 0; slot < kSlots; ++slot)
    TORCH_CHECK_VALUE(!operands[slot].has_value() || operands[slot]->sizes() == at::IntArrayRef(shape.of(slot)),
                      "fdg::channelwise: operand ", kNames[slot], " has shape ", operands[slot]->sizes(), ", not ",
                      shape.of(slot));
  for (int64_t rows : shape.rows) TORCH_CHECK_VALUE(rows >= 0, "fdg::channelwise: a row count is negative");
}

// One kernel call computing operand `mode` into outs[0] (kB: the gradients of x, m and w into outs[0..2]).
template <typename T>
void run(int64_t mode, const Operands& operands, const Indices& indices, const at::Tensor& table, const Shape& shape,
         std::vector<at::Tensor>& outs) {
  std::array<at::Tensor, kSlots> dense;
  std::array<const T*, kSlots> data{};
  for (int slot = 0; slot < kSlots; ++slot)
    if (operands[slot].has_value()) dense[slot] = operands[slot]->contiguous(), data[slot] = dense[slot].data_ptr<T>();
  std::array<at::Tensor, 3> index;
  std::array<const int64_t*, 3> at{};
  std::array<int64_t, 3> rows = {-1, -1, -1};  // not indexed
  const std::array<int, 3> slots = {0, 1, 4};
  for (int j = 0; j < 3; ++j)
    if (const Maybe& i = *indices.of(slots[j]); i.has_value())
      index[j] = i->contiguous(), at[j] = index[j].data_ptr<int64_t>(), rows[j] = shape.rows[slots[j]];
  const fdg::Operands<T> o{shape.n, data[0], data[1], data[2], data[3], data[4], shape.shared,
                           at[0],   at[1],   at[2],   rows[0], rows[1], rows[2]};
  T* gm = outs.size() > 1 ? outs[1].data_ptr<T>() : nullptr;
  T* gw = outs.size() > 2 ? outs[2].data_ptr<T>() : nullptr;
  const int64_t failed = fdg::channelwise<T>(table.data_ptr<int64_t>(), mode, o, outs[0].data_ptr<T>(), gm, gw,
                                             at::get_num_threads());
  TORCH_CHECK_INDEX(failed != 1, "fdg::channelwise: an index is out of range (x has ", shape.rows[0], " rows, z ",
                    shape.rows[1], ", y ", shape.rows[4], ")");
  TORCH_CHECK_VALUE(failed == 0, "fdg::channelwise: the gradients at once need per-row weights");
}

void dispatch(int64_t mode, const Operands& operands, const Indices& indices, const at::Tensor& table,
              const Shape& shape, std::vector<at::Tensor>& outs) {
  if (outs[0].scalar_type() == at::kFloat) run<float>(mode, operands, indices, table, shape, outs);
  else run<double>(mode, operands, indices, table, shape, outs);
}

// The operand missing from (x, z, m, w, y) (z only where the table pairs x with z): the gradient of the form with
// respect to it.
at::Tensor channelwise(const Maybe& x, const Maybe& z, const Maybe& m, const Maybe& w, const Maybe& y,
                       const Maybe& x_index, const Maybe& z_index, const Maybe& y_index, int64_t x_rows,
                       int64_t z_rows, int64_t y_rows, const at::Tensor& table, at::IntArrayRef sizes, bool shared) {
  const Operands operands = {x, z, m, w, y};
  const Indices indices{x_index, z_index, y_index};
  const Shape shape(operands, indices, {x_rows, z_rows, y_rows}, sizes, shared);
  check(operands, indices, table, shape);
  int missing = -1, absent = 0;
  for (int slot = 0; slot < kSlots; ++slot)
    if (!operands[slot].has_value() && (slot != 1 || paired(table))) missing = slot, ++absent;
  TORCH_CHECK_VALUE(absent == 1, "fdg::channelwise: exactly one operand of the form must be missing, not ", absent);
  const at::Tensor& like = operands[missing == 4 ? 0 : 4].value();
  std::vector<at::Tensor> outs = {at::empty(shape.of(missing), like.options())};
  dispatch(missing, operands, indices, table, shape, outs);
  return outs[0];
}

// The gradients of x, m and per-row w at once, given y (and z where the table is paired): what channelwise returns
// with each of them missing.
std::tuple<at::Tensor, at::Tensor, at::Tensor> channelwise_grads(
    const at::Tensor& x, const Maybe& z, const at::Tensor& m, const at::Tensor& w, const at::Tensor& y,
    const Maybe& x_index, const Maybe& z_index, const Maybe& y_index, int64_t x_rows, int64_t z_rows, int64_t y_rows,
    const at::Tensor& table, at::IntArrayRef sizes) {
  const Operands operands = {x, z, m, w, y};
  const Indices indices{x_index, z_index, y_index};
  const Shape shape(operands, indices, {x_rows, z_rows, y_rows}, sizes, false);
  check(operands, indices, table, shape);
  TORCH_CHECK_VALUE(z.has_value() == paired(table), "fdg::channelwise_grads: z must be given where the table pairs it");
  std::vector<at::Tensor> outs;
  for (int slot : {0, 2, 3}) outs.push_back(at::empty(shape.of(slot), x.options()));
  dispatch(fdg::kB, operands, indices, table, shape, outs);
  return {outs[0], outs[1], outs[2]};
}

}  // namespace

TORCH_LIBRARY(fdg, m) {
  m.def(
      "channelwise(Tensor? x, Tensor? z, Tensor? m, Tensor? w, Tensor? y, Tensor? x_index, Tensor? z_index, "
      "Tensor? y_index, SymInt x_rows, SymInt z_rows, SymInt y_rows, Tensor table, int[] sizes, bool shared) -> Tensor");
  m.def(
      "channelwise_grads(Tensor x, Tensor? z, Tensor m, Tensor w, Tensor y, Tensor? x_index, Tensor? z_index, "
      "Tensor? y_index, SymInt x_rows, SymInt z_rows, SymInt y_rows, Tensor table, int[] sizes) -> "
      "(Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(fdg, CPU, m) {
  m.impl("channelwise", &channelwise);
  m.impl("channelwise_grads", &channelwise_grads);
}
