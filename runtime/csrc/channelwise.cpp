// fdg's CPU kernel for channel-wise (uvu) couplings with a second operand of multiplicity one.
//
// Per row, the coupling is a sparse 4-linear form of four operands (fdg/runtime/channelwise.py):
//
//     F(x, m, w, y) = sum over entries (p, k, i, c) and channels u of
//                     y[y_off(p) + u*d3(p) + k] * m[c] * w[w_off(p) + u] * x[x_off(p) + u*d1(p) + i]
//
// x, y are in e3nn's mul_ir layout, m holds the per-row coupling matrices (b @ K: the CG tensors contracted with
// the spherical harmonics), w the per-path weights of every channel.  Given three operands, the kernel returns the
// gradient of F with respect to the fourth: the forward (y) or a backward (x, m, w).  Since every
// derivative of one mode is another mode, the autograd wrapper is differentiable to any order.
//
// Each row is processed in a scratch buffer with components first (ir_mul), so that the innermost loops run over
// the channels u, contiguous, and vectorize.  Rows are split between threads; shared weights (w without a batch
// axis) accumulate their gradient per thread and are summed at the end.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>
#ifdef __linux__
#include <sys/mman.h>
#endif

namespace {

// which operand is computed, in the order of the op's arguments (x, m, w, y)
enum Mode : int64_t { kX = 0, kM = 1, kW = 2, kY = 3 };

// The table (see channelwise.py: table()), all int64:
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

// CW channels as one value (GCC/Clang vector extension): the compiler maps it onto the CPU's SIMD registers.
template <typename T, int CW>
struct LanesOf;
template <int CW>
struct LanesOf<float, CW> {
  typedef float type __attribute__((vector_size(CW * sizeof(float))));
};
template <int CW>
struct LanesOf<double, CW> {
  typedef double type __attribute__((vector_size(CW * sizeof(double))));
};
template <typename T, int CW>
using Lanes = typename LanesOf<T, CW>::type;

template <typename T, int CW>
inline Lanes<T, CW> load(const T* p) {
  Lanes<T, CW> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T, int CW>
inline void store(T* p, Lanes<T, CW> v) {
  std::memcpy(p, &v, sizeof v);
}

// the sum of the lanes, pairwise (a sequential sum of 32 lanes is a chain of 32 dependent additions)
template <typename T, int CW>
inline T lane_sum(Lanes<T, CW> v) {
  if constexpr (CW == 1) {
    return v[0];
  } else {
    Lanes<T, CW / 2> low, high;
    std::memcpy(&low, &v, sizeof low);
    std::memcpy(&high, reinterpret_cast<const char*>(&v) + sizeof low, sizeof high);
    return lane_sum<T, CW / 2>(low + high);
  }
}

// One path on channels [u0, u0 + CW) of one row, with components first (ir_mul) in xs and ys.
template <typename T, int MODE, int CW>
inline void path_part(const Table& t, const int64_t* q, int64_t u0, const T* mr, const T* wr, T* xs, T* ys, T* orow) {
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
    } else {  // tmp = w y[k], then into x (kX) or reduced against x (kM)
      const Lanes<T, CW> tmp = load<T, CW>(wr + w_off) * load<T, CW>(yk);
      for (; e < e_end && ent[3 * e] == k; ++e) {
        T* xi = xs + x_off + ent[3 * e + 1] * mul;
        if (MODE == kX) {
          store<T, CW>(xi, load<T, CW>(xi) + mr[ent[3 * e + 2]] * tmp);
        } else {
          orow[ent[3 * e + 2]] += lane_sum<T, CW>(tmp * load<T, CW>(xi));
        }
      }
    }
  }
}

template <typename T, int MODE>
struct Rows {
  const Table& t;
  const T *x, *m, *w, *y;
  T* out;
  int64_t w_stride;  // 0 for shared weights

  // rows [begin, end); `acc`, if given, accumulates the gradient of shared weights over the rows (mode kW)
  void run(int64_t begin, int64_t end, T* acc) const {
    std::vector<T> xs(t.X), ys(t.Y);
    for (int64_t r = begin; r < end; ++r) row(r, xs.data(), ys.data(), acc);
  }

  void row(int64_t r, T* __restrict xs, T* __restrict ys, T* acc) const {
    const T* mr = MODE == kM ? nullptr : m + r * t.M;
    const T* wr = MODE == kW ? nullptr : w + r * w_stride;
    if (MODE == kX) std::fill(xs, xs + t.X, T(0));
    else transpose<T, true>(x + r * t.X, xs, t.xb, t.n_xb);
    if (MODE == kY) std::fill(ys, ys + t.Y, T(0));
    else transpose<T, true>(y + r * t.Y, ys, t.yb, t.n_yb);
    T* orow = nullptr;
    if (MODE == kM) {
      orow = out + r * t.M;
      std::fill(orow, orow + t.M, T(0));
    } else if (MODE == kW) {
      orow = acc ? acc : out + r * t.W;
      if (!acc) std::fill(orow, orow + t.W, T(0));
    }
    for (int64_t p = 0; p < t.n_paths; ++p) {
      const int64_t* q = t.paths + 8 * p;
      const int64_t mul = q[2];
      int64_t u0 = 0;
      for (; u0 + 32 <= mul; u0 += 32) path_part<T, MODE, 32>(t, q, u0, mr, wr, xs, ys, orow);
      for (; u0 + 16 <= mul; u0 += 16) path_part<T, MODE, 16>(t, q, u0, mr, wr, xs, ys, orow);
      for (; u0 + 4 <= mul; u0 += 4) path_part<T, MODE, 4>(t, q, u0, mr, wr, xs, ys, orow);
      for (; u0 < mul; ++u0) path_part<T, MODE, 1>(t, q, u0, mr, wr, xs, ys, orow);
    }
    if (MODE == kY) transpose<T, false>(ys, out + r * t.Y, t.yb, t.n_yb);
    if (MODE == kX) transpose<T, false>(xs, out + r * t.X, t.xb, t.n_xb);
  }
};

template <typename T, int MODE>
void run_mode(const Table& t, int64_t n, const T* x, const T* m, const T* w, const T* y, T* out, int64_t shared,
              int64_t threads) {
  const Rows<T, MODE> rows{t, x, m, w, y, out, shared ? 0 : t.W};
  const bool reduce = MODE == kW && shared;
  threads = std::max<int64_t>(1, std::min<int64_t>(threads, n / 64));
  std::vector<std::vector<T>> partial(reduce ? threads : 0, std::vector<T>(reduce ? t.W : 0, T(0)));
  auto part = [&](int64_t j) {
    const int64_t begin = n * j / threads, end = n * (j + 1) / threads;
    rows.run(begin, end, reduce ? partial[j].data() : nullptr);
  };
  std::vector<std::thread> pool;
  for (int64_t j = 1; j < threads; ++j) pool.emplace_back(part, j);
  part(0);
  for (auto& th : pool) th.join();
  if (reduce) {
    std::fill(out, out + t.W, T(0));
    for (const auto& acc : partial)
      for (int64_t c = 0; c < t.W; ++c) out[c] += acc[c];
  }
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

template <typename T>
void run(const int64_t* table, int64_t mode, int64_t n, const T* x, const T* m, const T* w, const T* y, T* out,
         int64_t shared, int64_t threads) {
  const Table t(table);
  const int64_t width[] = {t.X, t.M, t.W, t.Y};
  if (!(mode == kW && shared)) advise_huge_pages(out, sizeof(T) * n * width[mode]);
  switch (mode) {
    case kX: return run_mode<T, kX>(t, n, x, m, w, y, out, shared, threads);
    case kM: return run_mode<T, kM>(t, n, x, m, w, y, out, shared, threads);
    case kW: return run_mode<T, kW>(t, n, x, m, w, y, out, shared, threads);
    default: return run_mode<T, kY>(t, n, x, m, w, y, out, shared, threads);
  }
}

}  // namespace

extern "C" {

void fdg_channelwise_f32(const int64_t* table, int64_t mode, int64_t n, const float* x, const float* m,
                         const float* w, const float* y, float* out, int64_t shared, int64_t threads) {
  run<float>(table, mode, n, x, m, w, y, out, shared, threads);
}

void fdg_channelwise_f64(const int64_t* table, int64_t mode, int64_t n, const double* x, const double* m,
                         const double* w, const double* y, double* out, int64_t shared, int64_t threads) {
  run<double>(table, mode, n, x, m, w, y, out, shared, threads);
}
}
