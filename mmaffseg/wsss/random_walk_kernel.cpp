// Copyright (c) mmaffseg contributors. All rights reserved.
// The CPU kernel of PSA's random walk: see mmaffseg/wsss/random_walk_kernel.py.
#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// GCC/Clang vector of N scalars, loaded and stored unaligned through memcpy
template <typename T, int N>
struct Vec {
  typedef T type __attribute__((vector_size(N * sizeof(T))));
};

template <typename T, int N>
inline typename Vec<T, N>::type load(const T* p) {
  typename Vec<T, N>::type v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

template <typename T, int N>
inline void store(T* p, typename Vec<T, N>::type v) {
  std::memcpy(p, &v, sizeof(v));
}

// Channels [c0, c0 + CB) of NP consecutive pixels p (padded index) for one step:
//   y[p] = inv_d[p] (x[p] + sum_k a[p, k] x[p + o_k] + a[p - o_k, k] x[p - o_k])
// CB, a multiple of 4 up to 32, is split into vectors of 16, 8 and 4 scalars held in registers
// over the pairs; the NP pixels are independent multiply-add chains the CPU overlaps. cs is
// the row stride of x and y (the channels padded to a multiple of 4 with zeros).
template <typename T, int CB, int NP>
inline void pixels(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ a,
                   const T* __restrict__ inv_d, const int64_t* __restrict__ off, int64_t pairs,
                   int64_t cs, int64_t p, int64_t c0) {
  constexpr int n16 = CB / 16, n8 = CB % 16 / 8, n4 = CB % 8 / 4;
  constexpr int o8 = 16 * n16, o4 = o8 + 8 * n8;
  typedef typename Vec<T, 16>::type v16;
  typedef typename Vec<T, 8>::type v8;
  typedef typename Vec<T, 4>::type v4;
  v16 a16[NP][n16 ? n16 : 1];
  v8 a8[NP];
  v4 a4[NP];
  x += c0;
  for (int j = 0; j < NP; ++j) {  // the self-loop, weight 1
    const T* xr = x + (p + j) * cs;
    for (int i = 0; i < n16; ++i) a16[j][i] = load<T, 16>(xr + 16 * i);
    if constexpr (n8 > 0) a8[j] = load<T, 8>(xr + o8);
    if constexpr (n4 > 0) a4[j] = load<T, 4>(xr + o4);
  }
  const T* ap = a + p * pairs;
  for (int64_t k = 0; k < pairs; ++k) {
    const int64_t o = off[k];
    const T* xf = x + (p + o) * cs;  // partner p + o, weight stored at p
    const T* xb = x + (p - o) * cs;  // partner p - o, weight stored at p - o
    const T* af = ap + k;
    const T* ab = ap - o * pairs + k;
    for (int j = 0; j < NP; ++j) {
      const T wf = af[j * pairs], wb = ab[j * pairs];
      const T* xr = xf + j * cs;
      const T* xl = xb + j * cs;
      for (int i = 0; i < n16; ++i) {  // two fused multiply-adds (-ffp-contract=fast)
        a16[j][i] += wf * load<T, 16>(xr + 16 * i);
        a16[j][i] += wb * load<T, 16>(xl + 16 * i);
      }
      if constexpr (n8 > 0) {
        a8[j] += wf * load<T, 8>(xr + o8);
        a8[j] += wb * load<T, 8>(xl + o8);
      }
      if constexpr (n4 > 0) {
        a4[j] += wf * load<T, 4>(xr + o4);
        a4[j] += wb * load<T, 4>(xl + o4);
      }
    }
  }
  y += c0;
  for (int j = 0; j < NP; ++j) {
    const T s = inv_d[p + j];
    T* yr = y + (p + j) * cs;
    for (int i = 0; i < n16; ++i) store<T, 16>(yr + 16 * i, s * a16[j][i]);
    if constexpr (n8 > 0) store<T, 8>(yr + o8, s * a8[j]);
    if constexpr (n4 > 0) store<T, 4>(yr + o4, s * a4[j]);
  }
}

// Index of the half-disc offset (dy, dx) of radius R in the order of neighbour_offsets:
// (0, 1..R-1), then dy = 1..R-1 with dx = -(R-1)..R-1 and dx^2 + dy^2 < R^2.
template <int R>
constexpr int half_disc_index(int dy, int dx) {
  int k = 0;
  for (int ox = 1; ox < R; ++ox, ++k)
    if (dy == 0 && dx == ox) return k;
  for (int oy = 1; oy < R; ++oy)
    for (int ox = 1 - R; ox < R; ++ox)
      if (ox * ox + oy * oy < R * R) {
        if (dy == oy && dx == ox) return k;
        ++k;
      }
  return -1;
}

template <int R>
constexpr int half_disc_size() {  // 34 for R = 5
  int k = R - 1;
  for (int oy = 1; oy < R; ++oy)
    for (int ox = 1 - R; ox < R; ++ox) k += ox * ox + oy * oy < R * R;
  return k;
}

// The same step as `pixels` for radius R and CS (padded) channels known at compile time, on NP
// consecutive pixels of a grid row: per row dy of the disc, each score vector x[p + dy wp + e]
// is loaded once and multiplied into every pixel j it is a partner of (dx = e - j), instead of
// once per (pixel, pair); weights and vectors sit at constant displacements. Fully unrolled.
template <typename T, int R, int CS, int NP>
inline void pixels_fixed(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ a,
                         const T* __restrict__ inv_d, int64_t wp, int64_t p) {
  constexpr int h = R - 1, K = half_disc_size<R>();
  constexpr int n16 = CS / 16, n8 = CS % 16 / 8, n4 = CS % 8 / 4;
  constexpr int o8 = 16 * n16, o4 = o8 + 8 * n8;
  typedef typename Vec<T, 16>::type v16;
  typedef typename Vec<T, 8>::type v8;
  typedef typename Vec<T, 4>::type v4;
  v16 a16[NP][n16 ? n16 : 1];
  v8 a8[NP];
  v4 a4[NP];
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {  // the self-loop, weight 1
    const T* xr = x + (p + j) * CS;
#pragma GCC unroll 4
    for (int i = 0; i < n16; ++i) a16[j][i] = load<T, 16>(xr + 16 * i);
    if constexpr (n8 > 0) a8[j] = load<T, 8>(xr + o8);
    if constexpr (n4 > 0) a4[j] = load<T, 4>(xr + o4);
  }
#pragma GCC unroll 16
  for (int dy = -h; dy <= h; ++dy) {
    const T* xrow = x + (p + dy * wp) * CS;
    const T* a_here = a + p * K;               // pairs stored at the pixel (forward half)
    const T* a_there = a + (p + dy * wp) * K;  // pairs stored at the partner (backward half)
#pragma GCC unroll 32
    for (int e = -h; e < h + NP; ++e) {
      v16 x16[n16 ? n16 : 1];
      v8 x8;
      v4 x4;
#pragma GCC unroll 4
      for (int i = 0; i < n16; ++i) x16[i] = load<T, 16>(xrow + e * CS + 16 * i);
      if constexpr (n8 > 0) x8 = load<T, 8>(xrow + e * CS + o8);
      if constexpr (n4 > 0) x4 = load<T, 4>(xrow + e * CS + o4);
#pragma GCC unroll 8
      for (int j = 0; j < NP; ++j) {
        const int dx = e - j;
        if (dx < -h || dx > h || dx * dx + dy * dy >= R * R || (dx == 0 && dy == 0)) continue;
        const bool here = dy > 0 || (dy == 0 && dx > 0);
        const T w = here ? a_here[j * K + half_disc_index<R>(dy, dx)]
                         : a_there[(j + dx) * K + half_disc_index<R>(-dy, -dx)];
#pragma GCC unroll 4
        for (int i = 0; i < n16; ++i) a16[j][i] += w * x16[i];
        if constexpr (n8 > 0) a8[j] += w * x8;
        if constexpr (n4 > 0) a4[j] += w * x4;
      }
    }
  }
#pragma GCC unroll 8
  for (int j = 0; j < NP; ++j) {
    const T s = inv_d[p + j];
    T* yr = y + (p + j) * CS;
#pragma GCC unroll 4
    for (int i = 0; i < n16; ++i) store<T, 16>(yr + 16 * i, s * a16[j][i]);
    if constexpr (n8 > 0) store<T, 8>(yr + o8, s * a8[j]);
    if constexpr (n4 > 0) store<T, 4>(yr + o4, s * a4[j]);
  }
}

constexpr int kBlock = 32;  // channels per block
constexpr int kGroup = 4;   // pixels per group
constexpr int kFixedGroup = 8;  // pixels per group of the unrolled kernel

template <typename T, int NP>
using pixels_fn = void (*)(const T*, T*, const T*, const T*, const int64_t*, int64_t, int64_t,
                           int64_t, int64_t);

template <typename T, int NP, int... CB>
constexpr std::array<pixels_fn<T, NP>, sizeof...(CB)> table(std::integer_sequence<int, CB...>) {
  return {&pixels<T, 4 * CB, NP>...};  // entry i: a block of 4 i channels
}

template <typename T>
using fixed_fn = void (*)(const T*, T*, const T*, const T*, int64_t, int64_t);

template <typename T, int... CB>
constexpr std::array<fixed_fn<T>, sizeof...(CB)> fixed_table(std::integer_sequence<int, CB...>) {
  return {&pixels_fixed<T, 5, 4 * (CB + 1), kFixedGroup>...};  // entry i: 4 (i + 1) channels
}

// one step for the padded pixel runs [begin, begin + width) of the grid rows [r0, r1)
template <typename T>
void step_rows(const T* x, T* y, const T* a, const T* inv_d, const int64_t* off, int64_t pairs,
               int64_t cs, const int64_t* row_begin, int64_t r0, int64_t r1, int64_t width,
               int64_t wp, bool radius5) {
  static constexpr auto group =
      table<T, kGroup>(std::make_integer_sequence<int, kBlock / 4 + 1>());
  static constexpr auto single = table<T, 1>(std::make_integer_sequence<int, kBlock / 4 + 1>());
  // PSA's radius 5 with up to 32 float channels: the unrolled kernel for the groups of pixels,
  // the general one for the rest of a row
  if (std::is_same<T, float>::value && radius5 && cs <= kBlock) {
    static constexpr auto fixed =
        fixed_table<T>(std::make_integer_sequence<int, kBlock / 4>());
    for (int64_t r = r0; r < r1; ++r) {
      int64_t p = row_begin[r];
      const int64_t end = p + width;
      for (; p + kFixedGroup <= end; p += kFixedGroup) fixed[cs / 4 - 1](x, y, a, inv_d, wp, p);
      for (; p + kGroup <= end; p += kGroup) group[cs / 4](x, y, a, inv_d, off, pairs, cs, p, 0);
      for (; p < end; ++p) single[cs / 4](x, y, a, inv_d, off, pairs, cs, p, 0);
    }
    return;
  }
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c0 = 0; c0 < cs; c0 += kBlock) {
      const int64_t cb = std::min<int64_t>(kBlock, cs - c0) / 4;
      int64_t p = row_begin[r];
      const int64_t end = p + width;
      for (; p + kGroup <= end; p += kGroup) group[cb](x, y, a, inv_d, off, pairs, cs, p, c0);
      for (; p < end; ++p) single[cb](x, y, a, inv_d, off, pairs, cs, p, c0);
    }
  }
}

class Barrier {
 public:
  explicit Barrier(int count) : count_(count) {}
  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    if (++waiting_ == count_) {
      waiting_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation != generation_; });
    }
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  const int count_;
  int waiting_ = 0;
  int64_t generation_ = 0;
};

// x, out (B, H, W, C); pair (B, K, H, W): A^beta between (y, x) and (y + dy_k, x + dx_k), 0
// where there is no such pair (then also where the partner is outside the grid)
template <typename T>
void walk(const T* x_in, T* out, const T* pair, const int64_t* dydx, int64_t batch,
          int64_t height, int64_t width, int64_t channels, int64_t pairs, int64_t steps,
          int threads) {
  int64_t halo = 0;
  for (int64_t k = 0; k < 2 * pairs; ++k) halo = std::max<int64_t>(halo, std::abs(dydx[k]));
  // images stacked vertically, each with `halo` zero rows/columns around it: a partner
  // offset never leaves the buffer and never reaches another image
  const int64_t hp = height + 2 * halo, wp = width + 2 * halo, np = batch * hp * wp;
  std::vector<int64_t> off(pairs), row_begin(batch * height);
  for (int64_t k = 0; k < pairs; ++k) off[k] = dydx[2 * k] * wp + dydx[2 * k + 1];
  bool radius5 = pairs == half_disc_size<5>();  // the offsets of pixels_fixed<5>?
  for (int64_t k = 0; radius5 && k < pairs; ++k)
    radius5 = half_disc_index<5>(static_cast<int>(dydx[2 * k]),
                                 static_cast<int>(dydx[2 * k + 1])) == k;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < height; ++i)
      row_begin[b * height + i] = (b * hp + i + halo) * wp + halo;
  const int64_t cs = (channels + 3) / 4 * 4;  // row stride: channels padded with zeros
  std::vector<T> buf0(np * cs, T(0)), buf1(np * cs, T(0)), a(np * pairs, T(0)),
      inv_d(np, T(0));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < height; ++i)
      for (int64_t j = 0; j < width; ++j) {
        const int64_t src = (b * height + i) * width + j, p = row_begin[b * height + i] + j;
        std::memcpy(&buf0[p * cs], x_in + src * channels, channels * sizeof(T));
        for (int64_t k = 0; k < pairs; ++k)
          a[p * pairs + k] = pair[((b * pairs + k) * height + i) * width + j];
      }
  for (int64_t r = 0; r < batch * height; ++r)  // D: self-loop + both halves of every pair
    for (int64_t p = row_begin[r]; p < row_begin[r] + width; ++p) {
      T d = 1;
      for (int64_t k = 0; k < pairs; ++k) d += a[p * pairs + k] + a[(p - off[k]) * pairs + k];
      inv_d[p] = T(1) / d;
    }
  const int64_t rows = batch * height;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, rows / 4)));
  auto run = [&](int64_t r0, int64_t r1, Barrier* barrier) {
    T* src = buf0.data();
    T* dst = buf1.data();
    for (int64_t t = 0; t < steps; ++t) {
      step_rows<T>(src, dst, a.data(), inv_d.data(), off.data(), pairs, cs,
                   row_begin.data(), r0, r1, width, wp, radius5);
      if (barrier) barrier->wait();  // every row of dst is written before it is read
      std::swap(src, dst);
    }
  };
  if (threads <= 1) {
    run(0, rows, nullptr);
  } else {
    Barrier barrier(threads);
    std::vector<std::thread> pool;
    for (int i = 1; i < threads; ++i)
      pool.emplace_back(run, rows * i / threads, rows * (i + 1) / threads, &barrier);
    run(0, rows / threads, &barrier);
    for (auto& thread : pool) thread.join();
  }
  const T* result = steps % 2 ? buf1.data() : buf0.data();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j)
      std::memcpy(out + (r * width + j) * channels, result + (row_begin[r] + j) * cs,
                  channels * sizeof(T));
}

// 0 on success, 1 when the work buffers could not be allocated, 2 on any other C++ error (an
// exception must not cross into the ctypes caller)
template <typename T>
int walk_status(const T* x, T* out, const T* pair, const int64_t* dydx, int64_t batch,
                int64_t height, int64_t width, int64_t channels, int64_t pairs, int64_t steps,
                int64_t threads) {
  try {
    walk<T>(x, out, pair, dydx, batch, height, width, channels, pairs, steps, threads);
  } catch (const std::bad_alloc&) {
    return 1;
  } catch (...) {
    return 2;
  }
  return 0;
}

}  // namespace

extern "C" {
int mmaffseg_walk_f32(const float* x, float* out, const float* pair, const int64_t* dydx,
                      int64_t batch, int64_t height, int64_t width, int64_t channels,
                      int64_t pairs, int64_t steps, int64_t threads) {
  return walk_status<float>(x, out, pair, dydx, batch, height, width, channels, pairs, steps,
                            threads);
}
int mmaffseg_walk_f64(const double* x, double* out, const double* pair, const int64_t* dydx,
                      int64_t batch, int64_t height, int64_t width, int64_t channels,
                      int64_t pairs, int64_t steps, int64_t threads) {
  return walk_status<double>(x, out, pair, dydx, batch, height, width, channels, pairs, steps,
                             threads);
}
}
