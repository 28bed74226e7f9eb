// Host shim for runtime/src/backend/cuda/kernels.cu: just enough of CUDA's execution model to run
// the unmodified kernel source as C++. Each CUDA thread of a block is an OS thread; __syncthreads
// is a real barrier over the block; blocks run one after another, so `__shared__` arrays (made
// function-static) belong to one block at a time, as on a GPU. f16 is the compiler's _Float16
// (IEEE binary16, round to nearest even, the rounding of PTX cvt.rn.f16.f32).
#pragma once
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>

#define BRENIER_HOST_SHIM 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

typedef unsigned short half_bits;
typedef unsigned long long u64;

struct dim3_ {
    unsigned x = 0, y = 0, z = 0;
};
extern thread_local dim3_ threadIdx, blockIdx;
extern dim3_ blockDim, gridDim;
extern std::barrier<>* block_barrier;

inline void __syncthreads() {
    if (block_barrier) block_barrier->arrive_and_wait();
}

inline float h2f(half_bits h) {
    _Float16 v;
    std::memcpy(&v, &h, 2);
    return (float)v;
}
inline half_bits f2h(float f) {
    _Float16 v = (_Float16)f;
    half_bits h;
    std::memcpy(&h, &v, 2);
    return h;
}
inline float neg_inf() { return -INFINITY; }
// expf, fmaxf, sqrt, log, cos, sin: <cmath>, the host twins of the CUDA math functions.
