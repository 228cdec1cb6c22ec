// The kernel's table: the int64 description of one coupling (paths, blocks, entries, pairs) that the kernel reads
// (channelwise.cpp) and the ops check first (fdg::table_error, table.cpp).  Python writes it:
// fdg/runtime/channelwise_op.py, layout().
#pragma once
#include <cstdint>

namespace fdg {

// The table (see channelwise_op.py: layout()), all int64:
//   header [paths, x blocks, y blocks, entries, X, M, W, Y, pairs, z blocks, Z, T, C] (the row sizes of the
//     operands; T: of t, C: the channels of the pair stage; unpaired: no pairs or z blocks, Z = C = 0, T = X)
//   per path [t_off, y_off, mul, d1, d3, w_off, first entry, end entry]
//   per block of x, of y and of z [offset, mul, dim]
//   per entry [k, i, column of m], sorted by path, then k
//   per pair [l, i, j, v] (offsets of a component's C channels in t, x and z; v: a double's bits), sorted by l
constexpr int64_t kHeader = 13;

struct Table {
  int64_t n_paths, n_xb, n_yb, n_entries, X, M, W, Y, n_pairs, n_zb, Z, T, C;
  const int64_t* paths;
  const int64_t* xb;
  const int64_t* yb;
  const int64_t* zb;
  const int64_t* entries;
  const int64_t* pairs;

  explicit Table(const int64_t* t)
      : n_paths(t[0]), n_xb(t[1]), n_yb(t[2]), n_entries(t[3]), X(t[4]), M(t[5]), W(t[6]), Y(t[7]), n_pairs(t[8]),
        n_zb(t[9]), Z(t[10]), T(t[11]), C(t[12]) {
    paths = t + kHeader;
    xb = paths + 8 * n_paths;
    yb = xb + 3 * n_xb;
    zb = yb + 3 * n_yb;
    entries = zb + 3 * n_zb;
    pairs = entries + 3 * n_entries;
  }

  bool paired() const { return Z > 0; }
};

}  // namespace fdg
