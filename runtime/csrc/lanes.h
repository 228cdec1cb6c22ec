// Vector helpers of the native kernels: CW channels as one value (GCC/Clang vector extensions), loads, stores
// and horizontal sums.  Included by channelwise.cpp (fdg.runtime.native keys its cache on both files).
#pragma once
#include <cstring>

namespace fdg {

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

// v's lanes added down to 8 (CW >= 8), pairwise
template <typename T, int CW>
inline Lanes<T, 8> fold8(Lanes<T, CW> v) {
  if constexpr (CW == 8) {
    return v;
  } else {
    Lanes<T, CW / 2> low, high;
    std::memcpy(&low, &v, sizeof low);
    std::memcpy(&high, reinterpret_cast<const char*>(&v) + sizeof low, sizeof high);
    return fold8<T, CW / 2>(low + high);
  }
}

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)  // clang, GCC 12 and later
#define FDG_SHUFFLE 1
#endif
#endif
#ifndef FDG_SHUFFLE
#define FDG_SHUFFLE 0
#endif

#if FDG_SHUFFLE
// the lane sums of four 8-lane vectors at once, by shuffles (one horizontal sum each would take three times the
// instructions): [sum a, sum b, sum c, sum d]
template <typename T>
inline Lanes<T, 4> sums4(Lanes<T, 8> a, Lanes<T, 8> b, Lanes<T, 8> c, Lanes<T, 8> d) {
  const Lanes<T, 8> ab = __builtin_shufflevector(a, b, 0, 8, 2, 10, 4, 12, 6, 14) +
                         __builtin_shufflevector(a, b, 1, 9, 3, 11, 5, 13, 7, 15);
  const Lanes<T, 8> cd = __builtin_shufflevector(c, d, 0, 8, 2, 10, 4, 12, 6, 14) +
                         __builtin_shufflevector(c, d, 1, 9, 3, 11, 5, 13, 7, 15);
  const Lanes<T, 8> v = __builtin_shufflevector(ab, cd, 0, 1, 8, 9, 4, 5, 12, 13) +
                        __builtin_shufflevector(ab, cd, 2, 3, 10, 11, 6, 7, 14, 15);
  return __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
}
#endif

}  // namespace fdg
