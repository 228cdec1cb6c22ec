// fdg's CPU kernel for channel-wise (uvu) couplings with a second operand of multiplicity one.
//
// Per row, the coupling is a sparse 4-linear form of four operands (fdg/runtime/channelwise_op.py):
//
//     F(x, m, w, y) = sum over entries (p, k, i, c) and channels u of
//                     y[y_off(p) + u*d3(p) + k] * m[c] * w[w_off(p) + u] * x[x_off(p) + u*d1(p) + i]
//
// x, y are in e3nn's mul_ir layout, m holds the per-row coupling matrices (b @ K: the CG tensors contracted with
// the spherical harmonics), w the per-path weights of every channel.  Given three operands, the kernel returns the
// gradient of F with respect to the fourth: the forward (y) or a backward (x, m, w).  Since every
// derivative of one mode is another mode, the autograd wrapper is differentiable to any order.
//
// x and y may be read through an index (x[xi[r]] for row r: h[src]); a computed x or y with an index is summed by it
// (the scatter-sum of sum(..., by = dst), or the gradient of a gathered operand), so neither a gathered copy nor a
// per-row result is ever materialized.  For such a sum each thread owns a range of output rows and streams over all
// rows in memory order, taking those whose index falls in its range: no atomics, and each output row sums its rows
// in increasing order, so the bits are the same at any thread count.
// Indices are checked against their range before anything is read.
//
// Each row is processed in a scratch buffer with components first (ir_mul), so that the innermost loops run over
// the channels u, contiguous, and vectorize.  Output rows are split between threads; the gradient of shared weights
// (w without a batch axis) is summed per fixed chunk of rows, then over the chunks in order.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "channelwise.h"
#include "lanes.h"

namespace {

using fdg::kB;
using fdg::kM;
using fdg::kW;
using fdg::kX;
using fdg::kY;
using fdg::Operands;
using fdg::fold8;
using fdg::lane_sum;
using fdg::Lanes;
using fdg::load;
using fdg::store;
#if FDG_SHUFFLE
using fdg::sums4;
#endif

// The table (see channelwise_op.py: layout()), all int64:
//   header [paths, x blocks, y blocks, entries, X, M, W, Y] (the row sizes of the operands)
//   per path [x_off, y_off, mul, d1, d3, w_off, first entry, end entry]
//   per block of x and of y [offset, mul, dim]
//   per entry [k, i, column of m], sorted by path, then k
struct Table {
  int64_t n_paths, n_xb, n_yb, n_entries, X, M, W, Y;
  const int64_t* paths;
  const int64_t* xb;
  const int64_t* yb;
  const int64_t* entries;

  explicit Table(const int64_t* t)
      : n_paths(t[0]), n_xb(t[1]), n_yb(t[2]), n_entries(t[3]), X(t[4]), M(t[5]), W(t[6]), Y(t[7]) {
    paths = t + 8;
    xb = paths + 8 * n_paths;
    yb = xb + 3 * n_xb;
    entries = yb + 3 * n_yb;
  }
};

// One block [mul, dim] (mul_ir) <-> [dim, mul] (ir_mul); DIM > 0 is the block's dimension known at compile time
// (the inner loop unrolls), 0 a dimension read at run time.
template <typename T, int DIM, bool TO_IR_MUL>
inline void transpose_block(const T* __restrict src, T* __restrict dst, int64_t mul, int64_t dim) {
  const int64_t d = DIM > 0 ? DIM : dim;
  for (int64_t u = 0; u < mul; ++u)
    for (int64_t k = 0; k < d; ++k) {
      if (TO_IR_MUL) dst[k * mul + u] = src[u * d + k];
      else dst[u * d + k] = src[k * mul + u];
    }
}

// every block of a row between mul_ir and ir_mul
template <typename T, bool TO_IR_MUL>
void transpose(const T* __restrict src, T* __restrict dst, const int64_t* blocks, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t off = blocks[3 * b], mul = blocks[3 * b + 1], dim = blocks[3 * b + 2];
    switch (dim) {
      case 1: std::memcpy(dst + off, src + off, mul * sizeof(T)); break;
      case 3: transpose_block<T, 3, TO_IR_MUL>(src + off, dst + off, mul, dim); break;
      case 5: transpose_block<T, 5, TO_IR_MUL>(src + off, dst + off, mul, dim); break;
      case 7: transpose_block<T, 7, TO_IR_MUL>(src + off, dst + off, mul, dim); break;
      case 9: transpose_block<T, 9, TO_IR_MUL>(src + off, dst + off, mul, dim); break;
      default: transpose_block<T, 0, TO_IR_MUL>(src + off, dst + off, mul, dim);
    }
  }
}

// One path on channels [u0, u0 + CW) of one row, with components first (ir_mul) in xs and ys.
template <typename T, int MODE, int CW>
inline void path_part(const Table& t, const int64_t* q, int64_t u0, const T* mr, const T* wr, T* xs, T* ys, T* orow,
                      T* gx = nullptr, T* gw = nullptr) {
  const int64_t x_off = q[0] + u0, y_off = q[1] + u0, mul = q[2], w_off = q[5] + u0;
  const int64_t* ent = t.entries;
  int64_t e = q[6];
  const int64_t e_end = q[7];
  while (e < e_end) {  // one run of entries per output component k
    const int64_t k = ent[3 * e];
    T* yk = ys + y_off + k * mul;
    if (MODE == kY || MODE == kW) {  // tmp = sum_i m[c] x[i]
      Lanes<T, CW> tmp = {};
      for (; e < e_end && ent[3 * e] == k; ++e) tmp += mr[ent[3 * e + 2]] * load<T, CW>(xs + x_off + ent[3 * e + 1] * mul);
      if (MODE == kY) store<T, CW>(yk, load<T, CW>(yk) + load<T, CW>(wr + w_off) * tmp);
      else store<T, CW>(orow + w_off, load<T, CW>(orow + w_off) + load<T, CW>(yk) * tmp);
    } else {  // tmp = w y[k], then into x (kX), reduced against x (kM), or both and kW's sum too (kB)
      const Lanes<T, CW> tmp = load<T, CW>(wr + w_off) * load<T, CW>(yk);
      Lanes<T, CW> s = {};  // kB: sum_i m[c] x[i], for the gradient of w
      // kB: the updates kX, kM and kW would make, in their order (so each result has their bits)
      auto both = [&](int64_t entry, Lanes<T, CW> xv) {
        T* gxi = gx + x_off + ent[3 * entry + 1] * mul;
        store<T, CW>(gxi, load<T, CW>(gxi) + mr[ent[3 * entry + 2]] * tmp);
        s += mr[ent[3 * entry + 2]] * xv;
      };
#if FDG_SHUFFLE
      if constexpr ((MODE == kM || MODE == kB) && CW >= 8) {  // four entries' dot products reduced together
        for (; e + 3 < e_end && ent[3 * (e + 3)] == k; e += 4) {  // entries are sorted by k
          Lanes<T, CW> xv[4];
          Lanes<T, 8> part[4];
          for (int j = 0; j < 4; ++j) {
            xv[j] = load<T, CW>(xs + x_off + ent[3 * (e + j) + 1] * mul);
            part[j] = fold8<T, CW>(tmp * xv[j]);
          }
          const Lanes<T, 4> total = sums4<T>(part[0], part[1], part[2], part[3]);
          for (int j = 0; j < 4; ++j) {
            orow[ent[3 * (e + j) + 2]] += total[j];
            if constexpr (MODE == kB) both(e + j, xv[j]);
          }
        }
      }
#endif
      for (; e < e_end && ent[3 * e] == k; ++e) {
        T* xi = xs + x_off + ent[3 * e + 1] * mul;
        if constexpr (MODE == kX) {
          store<T, CW>(xi, load<T, CW>(xi) + mr[ent[3 * e + 2]] * tmp);
        } else {
          const Lanes<T, CW> xv = load<T, CW>(xi);
          orow[ent[3 * e + 2]] += lane_sum<T, CW>(tmp * xv);
          if constexpr (MODE == kB) both(e, xv);
        }
      }
      if constexpr (MODE == kB) store<T, CW>(gw + w_off, load<T, CW>(gw + w_off) + load<T, CW>(yk) * s);
    }
  }
}


// Rows whose gradient of shared weights is summed together: fixed, so the sum's order (and its bits) does not
// depend on the number of threads.
constexpr int64_t kChunk = 256;

template <typename T, int MODE>
struct Units {
  const Table& t;
  const Operands<T>& o;
  T* out;
  T* partial;  // shared weights: one gradient per chunk of rows
  T* acc;  // a computed operand summed by its index: every output row, components first
  const T* xt;  // an indexed x read, all its rows components first (each read by many rows: transposed once)
  const T* yt;
  T* gm;  // kB: the gradients of m and w (out is x's)
  T* gw;

  // row r's x (components first): in xt, or transposed into the scratch xs
  T* x_of(int64_t r, T* xs) const {
    if (xt) return const_cast<T*>(xt + o.xi[r] * t.X);  // only read: x is not the computed operand
    transpose<T, true>(o.x + r * t.X, xs, t.xb, t.n_xb);
    return xs;
  }

  T* y_of(int64_t r, T* ys) const {
    if (yt) return const_cast<T*>(yt + o.yi[r] * t.Y);
    transpose<T, true>(o.y + r * t.Y, ys, t.yb, t.n_yb);
    return ys;
  }

  void paths(int64_t r, T* xs, T* ys, T* orow, T* gx = nullptr, T* gwr = nullptr) const {
    const T* mr = MODE == kM ? nullptr : o.m + r * t.M;
    const T* wr = MODE == kW ? nullptr : o.w + (o.shared ? 0 : r * t.W);
    for (int64_t p = 0; p < t.n_paths; ++p) {
      const int64_t* q = t.paths + 8 * p;
      const int64_t mul = q[2];
      int64_t u0 = 0;
      for (; u0 + 32 <= mul; u0 += 32) path_part<T, MODE, 32>(t, q, u0, mr, wr, xs, ys, orow, gx, gwr);
      for (; u0 + 16 <= mul; u0 += 16) path_part<T, MODE, 16>(t, q, u0, mr, wr, xs, ys, orow, gx, gwr);
      for (; u0 + 4 <= mul; u0 += 4) path_part<T, MODE, 4>(t, q, u0, mr, wr, xs, ys, orow, gx, gwr);
      for (; u0 < mul; ++u0) path_part<T, MODE, 1>(t, q, u0, mr, wr, xs, ys, orow, gx, gwr);
    }
  }

  // units [begin, end): a row, or a chunk of rows whose shared-weight gradient is summed together
  void run(int64_t begin, int64_t end) const {
    std::vector<T> xs(t.X), ys(t.Y), gxs(MODE == kB ? t.X : 0);
    for (int64_t u = begin; u < end; ++u) {
      if constexpr (MODE == kB) {
        std::fill(gxs.begin(), gxs.end(), T(0));
        paths(u, x_of(u, xs.data()), y_of(u, ys.data()), zeroed(gm + u * t.M, t.M), gxs.data(), zeroed(gw + u * t.W, t.W));
        transpose<T, false>(gxs.data(), out + u * t.X, t.xb, t.n_xb);
        continue;
      }
      T* orow = nullptr;
      if (MODE == kM) orow = out + u * t.M;
      if (MODE == kW) orow = partial ? partial + u * t.W : out + u * t.W;
      if (MODE == kX) std::fill(xs.begin(), xs.end(), T(0));
      else if (MODE == kY) std::fill(ys.begin(), ys.end(), T(0));
      else std::fill(orow, orow + (MODE == kM ? t.M : t.W), T(0));
      auto one = [&](int64_t r) {
        T* xr = MODE == kX ? xs.data() : x_of(r, xs.data());
        T* yr = MODE == kY ? ys.data() : y_of(r, ys.data());
        paths(r, xr, yr, orow);
      };
      if (partial) {
        for (int64_t r = u * kChunk; r < std::min(o.n, (u + 1) * kChunk); ++r) one(r);
      } else {
        one(u);
      }
      if (MODE == kY) transpose<T, false>(ys.data(), out + u * t.Y, t.yb, t.n_yb);
      if (MODE == kX) transpose<T, false>(xs.data(), out + u * t.X, t.xb, t.n_xb);
    }
  }

  // output rows [v0, v1) of a computed x or y summed by its index: every row whose index falls there, in increasing
  // order (rows are streamed in memory order, and each output row's sum has the same order at any thread count)
  void run_scattered(int64_t v0, int64_t v1) const {
    const int64_t* index = MODE == kY ? o.yi : o.xi;
    const int64_t width = MODE == kY ? t.Y : t.X;
    std::vector<T> xs(t.X), ys(t.Y);
    for (int64_t r = 0; r < o.n; ++r) {
      const int64_t v = index[r];
      if (v < v0 || v >= v1) continue;
      T* row = acc + v * width;
      if constexpr (MODE == kB) {
        paths(r, x_of(r, xs.data()), y_of(r, ys.data()), zeroed(gm + r * t.M, t.M), row, zeroed(gw + r * t.W, t.W));
      } else {
        paths(r, MODE == kX ? row : x_of(r, xs.data()), MODE == kY ? row : y_of(r, ys.data()), nullptr);
      }
    }
    for (int64_t v = v0; v < v1; ++v) {
      if (MODE == kY) transpose<T, false>(acc + v * width, out + v * width, t.yb, t.n_yb);
      else transpose<T, false>(acc + v * width, out + v * width, t.xb, t.n_xb);
    }
  }

  static T* zeroed(T* row, int64_t width) {
    std::fill(row, row + width, T(0));
    return row;
  }
};

template <typename F>
void in_parallel(int64_t threads, F part) {
  std::vector<std::thread> pool;
  for (int64_t j = 1; j < threads; ++j) pool.emplace_back(part, j);
  part(0);
  for (auto& th : pool) th.join();
}

template <typename T, int MODE>
void run_mode(const Table& t, const Operands<T>& o, T* out, int64_t threads, T* gm = nullptr, T* gw = nullptr) {
  const bool scatter = (MODE == kY && o.y_indexed()) || ((MODE == kX || MODE == kB) && o.x_indexed());
  const bool reduce = MODE == kW && o.shared;
  const int64_t units = scatter ? (MODE == kY ? o.y_rows : o.x_rows) : reduce ? (o.n + kChunk - 1) / kChunk : o.n;
  std::vector<T> partial(reduce ? units * t.W : 0), acc(scatter ? units * (MODE == kY ? t.Y : t.X) : 0);
  // indexed operands that are read: components first, once per row of theirs rather than once per use
  std::vector<T> xt(MODE != kX && o.x_indexed() ? o.x_rows * t.X : 0), yt(MODE != kY && o.y_indexed() ? o.y_rows * t.Y : 0);
  for (int64_t v = 0; v < (xt.empty() ? 0 : o.x_rows); ++v) transpose<T, true>(o.x + v * t.X, xt.data() + v * t.X, t.xb, t.n_xb);
  for (int64_t v = 0; v < (yt.empty() ? 0 : o.y_rows); ++v) transpose<T, true>(o.y + v * t.Y, yt.data() + v * t.Y, t.yb, t.n_yb);
  const Units<T, MODE> work{t,
                            o,
                            out,
                            reduce ? partial.data() : nullptr,
                            acc.data(),
                            xt.empty() ? nullptr : xt.data(),
                            yt.empty() ? nullptr : yt.data(),
                            gm,
                            gw};
  threads = std::max<int64_t>(1, std::min<int64_t>({threads, o.n / 64, units}));
  if (scatter) {  // each thread owns the output rows of about n / threads rows
    const int64_t* index = MODE == kY ? o.yi : o.xi;
    std::vector<int64_t> before(units + 1, 0);  // rows whose index is below v
    for (int64_t r = 0; r < o.n; ++r) ++before[index[r] + 1];
    for (int64_t v = 0; v < units; ++v) before[v + 1] += before[v];
    std::vector<int64_t> bounds(threads + 1, units);
    bounds[0] = 0;
    for (int64_t j = 1; j < threads; ++j)
      bounds[j] = std::lower_bound(before.begin(), before.end(), o.n * j / threads) - before.begin();
    in_parallel(threads, [&](int64_t j) { work.run_scattered(bounds[j], std::max(bounds[j], bounds[j + 1])); });
  } else {
    in_parallel(threads, [&](int64_t j) { work.run(units * j / threads, units * (j + 1) / threads); });
  }
  if (reduce) {
    std::fill(out, out + t.W, T(0));
    for (int64_t u = 0; u < units; ++u)
      for (int64_t c = 0; c < t.W; ++c) out[c] += partial[u * t.W + c];
  }
}

bool in_range(const int64_t* index, int64_t n, int64_t size) {
  if (size < 0) return true;  // not indexed
  for (int64_t r = 0; r < n; ++r)
    if (index[r] < 0 || index[r] >= size) return false;
  return true;
}

// Ask for huge pages on a large output before its first touch: a fresh 40 MB tensor otherwise costs ~10k page
// faults (measured ~10 ms on 2 cores, as much as the kernel itself).  Harmless on memory already in use.
void advise_huge_pages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace

namespace fdg {

const char* table_error(const int64_t* t, int64_t numel) {
  if (numel < 8) return "it is shorter than its header";
  for (int64_t j = 0; j < 8; ++j)
    if (t[j] < 0) return "its header has a negative count or size";
  const Table table(t);
  // in this order, so that no count can overflow the sum before it is compared
  if (t[0] > numel / 8 || t[1] > numel / 3 || t[2] > numel / 3 || t[3] > numel / 3 ||
      numel != 8 + 8 * table.n_paths + 3 * (table.n_xb + table.n_yb + table.n_entries))
    return "its length does not match its counts";
  auto blocks_fit = [](const int64_t* b, int64_t n, int64_t width) {
    for (int64_t j = 0; j < n; ++j, b += 3)
      if (b[0] < 0 || b[1] < 0 || b[2] < 0 || (b[2] > 0 && b[1] > (width - b[0]) / b[2])) return false;
    return true;
  };
  if (!blocks_fit(table.xb, table.n_xb, table.X) || !blocks_fit(table.yb, table.n_yb, table.Y))
    return "a block lies outside its operand";
  for (int64_t p = 0; p < table.n_paths; ++p) {
    const int64_t* q = table.paths + 8 * p;
    for (int j = 0; j < 8; ++j)
      if (q[j] < 0) return "a path has a negative entry";
    const int64_t x_off = q[0], y_off = q[1], mul = q[2], d1 = q[3], d3 = q[4], w_off = q[5];
    if (x_off > table.X || y_off > table.Y || w_off > table.W || (d1 > 0 && mul > (table.X - x_off) / d1) ||
        (d3 > 0 && mul > (table.Y - y_off) / d3) || mul > table.W - w_off)
      return "a path lies outside its operands";
    if (q[6] > q[7] || q[7] > table.n_entries) return "a path's entries lie outside the table";
    for (int64_t e = q[6]; e < q[7]; ++e) {
      const int64_t* entry = table.entries + 3 * e;
      if (entry[0] < 0 || entry[0] >= d3 || entry[1] < 0 || entry[1] >= d1 || entry[2] < 0 || entry[2] >= table.M)
        return "an entry lies outside its path or the coupling matrix";
    }
  }
  return nullptr;
}

template <typename T>
int64_t channelwise(const int64_t* table, int64_t mode, const Operands<T>& o, T* out, T* gm, T* gw, int64_t threads) {
  if (!in_range(o.xi, o.n, o.x_rows) || !in_range(o.yi, o.n, o.y_rows)) return 1;
  if (mode == kB && o.shared) return 2;
  const Table t(table);
  const int64_t width[] = {t.X, t.M, t.W, t.Y, t.X};
  const int64_t x_rows = o.x_indexed() ? o.x_rows : o.n;
  const int64_t rows[] = {x_rows, o.n, o.n, o.y_indexed() ? o.y_rows : o.n, x_rows};
  if (!(mode == kW && o.shared)) advise_huge_pages(out, sizeof(T) * rows[mode] * width[mode]);
  switch (mode) {
    case kX: run_mode<T, kX>(t, o, out, threads); break;
    case kM: run_mode<T, kM>(t, o, out, threads); break;
    case kW: run_mode<T, kW>(t, o, out, threads); break;
    case kB:
      advise_huge_pages(gm, sizeof(T) * o.n * t.M);
      advise_huge_pages(gw, sizeof(T) * o.n * t.W);
      run_mode<T, kB>(t, o, out, threads, gm, gw);
      break;
    default: run_mode<T, kY>(t, o, out, threads);
  }
  return 0;
}

template int64_t channelwise<float>(const int64_t*, int64_t, const Operands<float>&, float*, float*, float*, int64_t);
template int64_t channelwise<double>(const int64_t*, int64_t, const Operands<double>&, double*, double*, double*,
                                     int64_t);

}  // namespace fdg
