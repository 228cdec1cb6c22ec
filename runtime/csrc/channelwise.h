// The interface of fdg's channel-wise kernel (channelwise.cpp), used by the torch ops (ops.cpp).  No torch header
// is needed here: the kernel works on raw arrays, the ops check and allocate the tensors.
#pragma once
#include <cstdint>

namespace fdg {

// which operand is computed, in the order of the op's arguments (x, z, m, w, y); kB: x, m and w at once, from y
// (the whole backward of a forward but z's, in one pass over the rows)
enum Mode : int64_t { kX = 0, kZ = 1, kM = 2, kW = 3, kY = 4, kB = 5 };

// The operands of one call (z: only with a paired table, else null).  x, z and y are read through an index where
// one is given (row r reads row xi[r] of x): a gathered operand is read in place, and a computed one with an index
// is summed by it (a scatter-sum).
template <typename T>
struct Operands {
  int64_t n;  // rows (edges, with indices)
  const T *x, *z, *m, *w, *y;
  int64_t shared;  // w has no batch axis
  const int64_t *xi, *zi, *yi;  // the indices (may be null when n is 0)
  int64_t x_rows, z_rows, y_rows;  // rows of x, z and y; -1: not indexed, row r reads row r

  bool x_indexed() const { return x_rows >= 0; }
  bool z_indexed() const { return z_rows >= 0; }
  bool y_indexed() const { return y_rows >= 0; }
};

// Why a table of `numel` entries cannot be used (it would make the kernel read or write out of its operands), or
// null where it can.  The ops check every table with it before the kernel runs.
const char* table_error(const int64_t* table, int64_t numel);

// Computes operand `mode` of the 4- or 5-linear form the table describes into out (kB: the gradient of x into out, of m
// into gm and of w into gw) with up to `threads` threads.  0 on success, 1 where an index is out of range (nothing
// is read then), 2 for kB with shared weights (not a mode).
template <typename T>
int64_t channelwise(const int64_t* table, int64_t mode, const Operands<T>& o, T* out, T* gm, T* gw, int64_t threads);

}  // namespace fdg
