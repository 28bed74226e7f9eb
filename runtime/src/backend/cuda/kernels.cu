// brenier's device kernels: the OT map's reductions and the fused DDIM step.
//
// One source, two compilers. On a device, NVRTC compiles it for the GPU's own sm_XY at first use
// (backend/cuda/compile.rs). In the test suite the same text is compiled as C++ against a host
// shim that runs every CUDA thread of a block as an OS thread with a real barrier
// (tests/cuda_host/shim.h), and checked against the CPU reference kernels. So the file uses no
// CUDA header and nothing the shim cannot provide: f16 values travel as raw bits and convert with
// PTX `cvt` (a device needs only the driver and NVRTC, not the toolkit's headers).
//
// Conventions: blocks are BLOCK threads (a power of two); row-wise kernels take one block per
// query row; NaN scores never win an argmax (every comparison with NaN is false), like the CPU
// reference in ot/map.rs; ties go to the lower index.

#ifndef BRENIER_HOST_SHIM
typedef unsigned short half_bits;
typedef unsigned long long u64;
__device__ __forceinline__ float h2f(half_bits h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ half_bits f2h(float f) {
    half_bits h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}
__device__ __forceinline__ float neg_inf() { return __int_as_float(0xff800000); }
#endif

#ifndef BRENIER_BLOCK
#define BRENIER_BLOCK 256
#endif
#define BLOCK BRENIER_BLOCK

// ---------------------------------------------------------------------------------------------
// OT assignment: scores = Q·Yᵀ comes from a cuBLAS GemmEx (f16 in, f32 accumulate), batch×n
// row-major. argmax_i scores[q][i] + heights[i] per row. `best_index` is -1 when every score of
// the row is NaN (the host turns that into a typed error).
extern "C" __global__ void ot_argmax(const float* scores, const float* heights, int n, int* best_index,
                                     float* best_score) {
    __shared__ float s_score[BLOCK];
    __shared__ int s_index[BLOCK];
    const int q = blockIdx.x;
    const int t = threadIdx.x;
    const float* row = scores + (u64)q * (u64)n;
    float bs = neg_inf();
    int bi = n;  // n = no candidate yet
    for (int i = t; i < n; i += blockDim.x) {
        const float s = row[i] + heights[i];
        if (s > bs || (s == bs && i < bi)) {
            bs = s;
            bi = i;
        }
    }
    s_score[t] = bs;
    s_index[t] = bi;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) {
            const float os = s_score[t + stride];
            const int oi = s_index[t + stride];
            if (os > s_score[t] || (os == s_score[t] && oi < s_index[t])) {
                s_score[t] = os;
                s_index[t] = oi;
            }
        }
        __syncthreads();
    }
    if (t == 0) {
        best_index[q] = s_index[0] == n ? -1 : s_index[0];
        best_score[q] = s_score[0];
    }
}

// Entropic soft map, step 1: scores (batch×n, from the GEMM) become softmax weights in place,
// w_i = exp((s_i + h_i − max)/τ) / Σ. `status[q]` is set to 1 when the row's max is not finite
// (all NaN or infinite: the host reports it). NaN scores are skipped by the max, as in the CPU
// reference (f32::max ignores NaN), and propagate through exp like there.
extern "C" __global__ void ot_softmax_rows(float* scores, const float* heights, int n, float tau, int* status) {
    __shared__ float s_red[BLOCK];
    const int q = blockIdx.x;
    const int t = threadIdx.x;
    float* row = scores + (u64)q * (u64)n;
    float m = neg_inf();
    for (int i = t; i < n; i += blockDim.x) {
        const float s = row[i] + heights[i];
        row[i] = s;
        m = fmaxf(m, s);
    }
    s_red[t] = m;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s_red[t] = fmaxf(s_red[t], s_red[t + stride]);
        __syncthreads();
    }
    const float max = s_red[0];
    __syncthreads();
    const bool finite = max - max == 0.0f;  // false for ±inf and NaN
    if (t == 0) status[q] = finite ? 0 : 1;
    if (!finite) return;  // uniform across the block: no thread is left waiting at a barrier
    float sum = 0.0f;
    for (int i = t; i < n; i += blockDim.x) {
        const float w = expf((row[i] - max) / tau);
        row[i] = w;
        sum += w;
    }
    s_red[t] = sum;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (t < stride) s_red[t] += s_red[t + stride];
        __syncthreads();
    }
    const float inv = 1.0f / s_red[0];
    for (int i = t; i < n; i += blockDim.x) row[i] *= inv;
}

// Entropic soft map, step 2: out[q][j] = Σ_i w[q][i] · y[i][j], f32 accumulation over the f16
// targets. Grid (⌈d/BLOCK⌉, batch); adjacent threads read adjacent target columns (coalesced).
extern "C" __global__ void ot_weighted_sum(const float* weights, const half_bits* targets, int n, int d, float* out) {
    const int q = blockIdx.y;
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= d) return;
    const float* w = weights + (u64)q * (u64)n;
    float acc = 0.0f;
    for (int i = 0; i < n; ++i) acc += w[i] * h2f(targets[(u64)i * (u64)d + j]);
    out[(u64)q * (u64)d + j] = acc;
}

// ---------------------------------------------------------------------------------------------
// Seeded Gaussian noise, the device twin of rng.rs: SplitMix64 over a (key, counter) pair, then
// Box–Muller on counter pairs in f64, so element i of a stream is the same value the CPU draws.
__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

__device__ __forceinline__ double uniform01(u64 key, u64 i) {
    const u64 golden = 0x9E3779B97F4A7C15ull;
    const u64 bits = mix64(key ^ mix64(i * golden + golden));
    return (double)((bits >> 11) + 1) * (1.0 / 9007199254740992.0);  // 2^-53
}

__device__ __forceinline__ float normal_at(u64 key, u64 i) {
    const u64 pair = i / 2;
    const double u1 = uniform01(key, 2 * pair);
    const double u2 = uniform01(key, 2 * pair + 1);
    const double r = sqrt(-2.0 * log(u1));
    const double th = 6.283185307179586 * u2;
    return (float)(i % 2 == 0 ? r * cos(th) : r * sin(th));
}

extern "C" __global__ void gaussian_f32(float* out, u64 n, u64 key) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = normal_at(key, i);
}

// ---------------------------------------------------------------------------------------------
// The DDIM step x ← c_x·x + c_ε·ε + σ·z with z drawn in place (σ > 0 only), f32 math; the f16
// variant keeps x and ε in f16 storage.
extern "C" __global__ void ddim_step_f32(float* x, const float* eps, u64 n, float c_x, float c_eps, float sigma,
                                         u64 key) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = c_x * x[i] + c_eps * eps[i];
    if (sigma > 0.0f) v += sigma * normal_at(key, i);
    x[i] = v;
}

extern "C" __global__ void ddim_step_f16(half_bits* x, const half_bits* eps, u64 n, float c_x, float c_eps,
                                         float sigma, u64 key) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = c_x * h2f(x[i]) + c_eps * h2f(eps[i]);
    if (sigma > 0.0f) v += sigma * normal_at(key, i);
    x[i] = f2h(v);
}
