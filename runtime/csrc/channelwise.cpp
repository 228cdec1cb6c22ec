// fdg's CPU kernel for channel-wise (uvu) couplings with a second operand of multiplicity one, and for fuse trees
// ((x, z), b) whose left child is a channel-wise product of two operands.
//
// Per row, the coupling is a sparse 4-linear form of four operands (fdg/runtime/channelwise_op.py):
//
//     F(t, m, w, y) = sum over entries (p, k, i, c) and channels u of
//                     y[y_off(p) + u*d3(p) + k] * m[c] * w[w_off(p) + u] * t[t_off(p) + u*d1(p) + i]
//
// t, y are in e3nn's mul_ir layout, m holds the per-row coupling matrices (b @ K: the CG tensors contracted with
// the spherical harmonics), w the per-path weights of every channel.  Either t is the operand x itself, or (a
// "paired" table) it is the product of two operands x and z channel by channel,
//
//     t[l, u] = sum over pairs (l, i, j, v) of  v * x[i, u] * z[j, u]      (components first, C channels),
//
// the left child of a fuse tree computed per row in a scratch buffer, never stored; F is then a 5-linear form of
// (x, z, m, w, y).  Given all operands but one, the kernel returns the gradient of F with respect to the missing
// one: the forward (y) or a backward (x, z, m, w).  Since every derivative of one mode is another mode, the
// autograd wrapper is differentiable to any order.
//
// x, z and y may be read through an index (x[xi[r]] for row r: h[src]); a computed x, z or y with an index is summed
// by it (the scatter-sum of sum(..., by = dst), or the gradient of a gathered operand), so neither a gathered copy
// nor a per-row result is ever materialized.  For such a sum each thread owns a range of output rows and streams
// over all rows in memory order, taking those whose index falls in its range: no atomics, and each output row sums
// its rows in increasing order, so the bits are the same at any thread count.
// Indices are checked against their range before anything is read.
//
// Each row is processed in a scratch buffer with components first (ir_mul), so that the innermost loops run over
// the channels u, contiguous, and vectorize.  Output rows are split between threads; the gradient of shared weights
// (w without a batch axis) is summed per fixed chunk of rows, then over the chunks in order.
#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "channelwise.h"
#include "lanes.h"
#include "table.h"

namespace {

using fdg::kB;
using fdg::kM;
using fdg::kW;
using fdg::kX;
using fdg::kY;
using fdg::kZ;
using fdg::Operands;
using fdg::fold8;
using fdg::lane_sum;
using fdg::Lanes;
using fdg::load;
using fdg::store;
#if FDG_SHUFFLE
using fdg::sums4;
#endif
using fdg::Table;

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


// The pair stage, t[l] = sum of v x[i] z[j] over the pairs (components first, C channels each), into a zeroed t.
template <typename T>
void pair_stage(const Table& t, const T* values, const T* __restrict x, const T* __restrict z, T* __restrict out) {
  std::fill(out, out + t.T, T(0));
  for (int64_t p = 0; p < t.n_pairs; ++p) {
    const int64_t* q = t.pairs + 4 * p;
    T* __restrict o = out + q[0];
    const T* a = x + q[1];
    const T* b = z + q[2];
    const T v = values[p];
    int64_t u = 0;
    for (; u + 16 <= t.C; u += 16) store<T, 16>(o + u, load<T, 16>(o + u) + v * load<T, 16>(a + u) * load<T, 16>(b + u));
    for (; u < t.C; ++u) o[u] += v * a[u] * b[u];
  }
}

// The gradient gt of t carried to x (INTO_X: out[i] += v gt[l] z[j], other = z) or to z (out[j] += v gt[l] x[i]).
template <typename T, bool INTO_X>
void chain(const Table& t, const T* values, const T* __restrict gt, const T* __restrict other, T* __restrict out) {
  for (int64_t p = 0; p < t.n_pairs; ++p) {
    const int64_t* q = t.pairs + 4 * p;
    const T* g = gt + q[0];
    const T* b = other + (INTO_X ? q[2] : q[1]);
    T* o = out + (INTO_X ? q[1] : q[2]);
    const T v = values[p];
    int64_t u = 0;
    for (; u + 16 <= t.C; u += 16) store<T, 16>(o + u, load<T, 16>(o + u) + v * load<T, 16>(g + u) * load<T, 16>(b + u));
    for (; u < t.C; ++u) o[u] += v * g[u] * b[u];
  }
}

// Rows whose gradient of shared weights is summed together: fixed, so the sum's order (and its bits) does not
// depend on the number of threads.
constexpr int64_t kChunk = 256;

// One thread's scratch rows, components first: x, z and y as read, t (the pair stage), gt (t's gradient) and g (the
// computed x or z before it is written back in mul_ir).
template <typename T>
struct Scratch {
  std::vector<T> x, z, y, t, gt, g;
  explicit Scratch(const Table& tb) : x(tb.X), z(tb.Z), y(tb.Y), t(tb.paired() ? tb.T : 0), gt(tb.paired() ? tb.T : 0), g(std::max(tb.X, tb.Z)) {}
};

template <typename T, int MODE>
struct Units {
  const Table& t;
  const Operands<T>& o;
  const T* values;  // the pairs' coefficients
  T* out;
  T* partial;  // shared weights: one gradient per chunk of rows
  T* acc;  // a computed operand summed by its index: every output row, components first
  const T* xt;  // an indexed x read, all its rows components first (each read by many rows: transposed once)
  const T* zt;
  const T* yt;
  T* gm;  // kB: the gradients of m and w (out is x's)
  T* gw;

  static constexpr bool kIntoX = MODE == kX || MODE == kB;  // the computed channels are x's (else z's, or none)
  static constexpr bool kChannels = kIntoX || MODE == kZ;

  // row r of an operand read (components first): from its transposed table where indexed, else transposed here
  static const T* read(const T* table, const int64_t* index, const T* rows, int64_t r, int64_t width,
                       const int64_t* blocks, int64_t n_blocks, std::vector<T>& scratch) {
    if (table) return table + index[r] * width;
    transpose<T, true>(rows + r * width, scratch.data(), blocks, n_blocks);
    return scratch.data();
  }
  const T* x_of(int64_t r, Scratch<T>& s) const { return read(xt, o.xi, o.x, r, t.X, t.xb, t.n_xb, s.x); }
  const T* z_of(int64_t r, Scratch<T>& s) const { return read(zt, o.zi, o.z, r, t.Z, t.zb, t.n_zb, s.z); }
  const T* y_of(int64_t r, Scratch<T>& s) const { return read(yt, o.yi, o.y, r, t.Y, t.yb, t.n_yb, s.y); }

  // row r's t: x itself, or the pair stage of x and z
  T* t_of(int64_t r, Scratch<T>& s) const {
    if (!t.paired()) return const_cast<T*>(x_of(r, s));  // only read: x is not the computed operand
    pair_stage<T>(t, values, x_of(r, s), z_of(r, s), s.t.data());
    return s.t.data();
  }

  void paths(int64_t r, T* ts, T* ys, T* orow, T* gts = nullptr, T* gwr = nullptr) const {
    const T* mr = MODE == kM ? nullptr : o.m + r * t.M;
    const T* wr = MODE == kW ? nullptr : o.w + (o.shared ? 0 : r * t.W);
    constexpr int kMode = MODE == kZ ? kX : MODE;  // z's gradient goes through t's, as x's does
    for (int64_t p = 0; p < t.n_paths; ++p) {
      const int64_t* q = t.paths + 8 * p;
      const int64_t mul = q[2];
      int64_t u0 = 0;
      for (; u0 + 32 <= mul; u0 += 32) path_part<T, kMode, 32>(t, q, u0, mr, wr, ts, ys, orow, gts, gwr);
      for (; u0 + 16 <= mul; u0 += 16) path_part<T, kMode, 16>(t, q, u0, mr, wr, ts, ys, orow, gts, gwr);
      for (; u0 + 4 <= mul; u0 += 4) path_part<T, kMode, 4>(t, q, u0, mr, wr, ts, ys, orow, gts, gwr);
      for (; u0 < mul; ++u0) path_part<T, kMode, 1>(t, q, u0, mr, wr, ts, ys, orow, gts, gwr);
    }
  }

  // row r's contribution to the computed x or z (kX, kZ, kB's x: added into g, components first), and kB's
  // gradients of m and w: through t's gradient where the table is paired
  void channels(int64_t r, Scratch<T>& s, T* g) const {
    T* ys = const_cast<T*>(y_of(r, s));  // only read
    T* gt = t.paired() ? zeroed(s.gt.data(), t.T) : g;
    if constexpr (MODE == kB) paths(r, t_of(r, s), ys, zeroed(gm + r * t.M, t.M), gt, zeroed(gw + r * t.W, t.W));
    else paths(r, gt, ys, nullptr);
    if (!t.paired()) return;
    if constexpr (kIntoX) chain<T, true>(t, values, gt, z_of(r, s), g);
    else chain<T, false>(t, values, gt, x_of(r, s), g);
  }

  // the computed operand's layout: (blocks, count, width)
  const int64_t* blocks() const { return MODE == kY ? t.yb : kIntoX ? t.xb : t.zb; }
  int64_t n_blocks() const { return MODE == kY ? t.n_yb : kIntoX ? t.n_xb : t.n_zb; }
  int64_t width() const { return MODE == kY ? t.Y : kIntoX ? t.X : t.Z; }

  // units [begin, end): a row, or a chunk of rows whose shared-weight gradient is summed together
  void run(int64_t begin, int64_t end) const {
    Scratch<T> s(t);
    for (int64_t u = begin; u < end; ++u) {
      if constexpr (kChannels) {
        T* g = zeroed(s.g.data(), width());
        channels(u, s, g);
        transpose<T, false>(g, out + u * width(), blocks(), n_blocks());
        continue;
      }
      T* orow = nullptr;
      if (MODE == kM) orow = out + u * t.M;
      if (MODE == kW) orow = partial ? partial + u * t.W : out + u * t.W;
      if (MODE == kY) zeroed(s.y.data(), t.Y);
      else zeroed(orow, MODE == kM ? t.M : t.W);
      auto one = [&](int64_t r) {
        T* yr = MODE == kY ? s.y.data() : const_cast<T*>(y_of(r, s));
        paths(r, t_of(r, s), yr, orow);
      };
      if (partial) {
        for (int64_t r = u * kChunk; r < std::min(o.n, (u + 1) * kChunk); ++r) one(r);
      } else {
        one(u);
      }
      if (MODE == kY) transpose<T, false>(s.y.data(), out + u * t.Y, t.yb, t.n_yb);
    }
  }

  // output rows [v0, v1) of a computed x, z or y summed by its index: every row whose index falls there, in
  // increasing order (rows are streamed in memory order, and each output row's sum has the same order at any thread
  // count)
  void run_scattered(int64_t v0, int64_t v1) const {
    const int64_t* index = MODE == kY ? o.yi : kIntoX ? o.xi : o.zi;
    Scratch<T> s(t);
    for (int64_t r = 0; r < o.n; ++r) {
      const int64_t v = index[r];
      if (v < v0 || v >= v1) continue;
      T* row = acc + v * width();
      if constexpr (kChannels) channels(r, s, row);
      else paths(r, t_of(r, s), row, nullptr);
    }
    for (int64_t v = v0; v < v1; ++v) transpose<T, false>(acc + v * width(), out + v * width(), blocks(), n_blocks());
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

// an indexed operand that is read, all its rows components first (empty where it is computed or not indexed)
template <typename T>
std::vector<T> transposed(bool read, const T* rows, int64_t n_rows, int64_t width, const int64_t* blocks,
                          int64_t n_blocks) {
  std::vector<T> out(read && n_rows > 0 ? n_rows * width : 0);
  for (int64_t v = 0; v < (out.empty() ? 0 : n_rows); ++v)
    transpose<T, true>(rows + v * width, out.data() + v * width, blocks, n_blocks);
  return out;
}

template <typename T, int MODE>
void run_mode(const Table& t, const Operands<T>& o, T* out, int64_t threads, T* gm = nullptr, T* gw = nullptr) {
  using U = Units<T, MODE>;
  const bool scatter = (MODE == kY && o.y_indexed()) || (U::kIntoX && o.x_indexed()) || (MODE == kZ && o.z_indexed());
  const bool reduce = MODE == kW && o.shared;
  const int64_t width = MODE == kY ? t.Y : U::kIntoX ? t.X : t.Z;
  const int64_t scattered = MODE == kY ? o.y_rows : U::kIntoX ? o.x_rows : o.z_rows;
  const int64_t units = scatter ? scattered : reduce ? (o.n + kChunk - 1) / kChunk : o.n;
  std::vector<T> partial(reduce ? units * t.W : 0), acc(scatter ? units * width : 0);
  std::vector<T> values(t.n_pairs);
  for (int64_t p = 0; p < t.n_pairs; ++p) values[p] = T(std::bit_cast<double>(t.pairs[4 * p + 3]));
  // indexed operands that are read: components first, once per row of theirs rather than once per use
  const std::vector<T> xt = transposed<T>(MODE != kX && o.x_indexed(), o.x, o.x_rows, t.X, t.xb, t.n_xb);
  const std::vector<T> zt = transposed<T>(MODE != kZ && o.z_indexed(), o.z, o.z_rows, t.Z, t.zb, t.n_zb);
  const std::vector<T> yt = transposed<T>(MODE != kY && o.y_indexed(), o.y, o.y_rows, t.Y, t.yb, t.n_yb);
  auto data = [](const std::vector<T>& v) { return v.empty() ? nullptr : v.data(); };
  const U work{t, o, values.data(), out, reduce ? partial.data() : nullptr, acc.data(), data(xt), data(zt), data(yt),
               gm, gw};
  threads = std::max<int64_t>(1, std::min<int64_t>({threads, o.n / 64, units}));
  if (scatter) {  // each thread owns the output rows of about n / threads rows
    const int64_t* index = MODE == kY ? o.yi : U::kIntoX ? o.xi : o.zi;
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

template <typename T>
int64_t channelwise(const int64_t* table, int64_t mode, const Operands<T>& o, T* out, T* gm, T* gw, int64_t threads) {
  if (!in_range(o.xi, o.n, o.x_rows) || !in_range(o.zi, o.n, o.z_rows) || !in_range(o.yi, o.n, o.y_rows)) return 1;
  if (mode == kB && o.shared) return 2;
  const Table t(table);
  const int64_t width[] = {t.X, t.Z, t.M, t.W, t.Y, t.X};
  const int64_t x_rows = o.x_indexed() ? o.x_rows : o.n;
  const int64_t rows[] = {x_rows, o.z_indexed() ? o.z_rows : o.n, o.n, o.n, o.y_indexed() ? o.y_rows : o.n, x_rows};
  if (!(mode == kW && o.shared)) advise_huge_pages(out, sizeof(T) * rows[mode] * width[mode]);
  switch (mode) {
    case kX: run_mode<T, kX>(t, o, out, threads); break;
    case kZ: run_mode<T, kZ>(t, o, out, threads); break;
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
