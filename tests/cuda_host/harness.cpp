// Launches the kernels of runtime/src/backend/cuda/kernels.cu on the host (see shim.h) behind a C
// ABI the Rust tests call (tests/tests/cuda_kernels_host.rs).
#include <mutex>
#include <thread>
#include <vector>

#include "shim.h"
#include "../../runtime/src/backend/cuda/kernels.cu"

thread_local dim3_ threadIdx, blockIdx;
dim3_ blockDim, gridDim;
std::barrier<>* block_barrier = nullptr;

// Runs `kernel` over a grid. `threaded`: each CUDA thread of a block on its own OS thread with a
// barrier (for kernels with __syncthreads); otherwise threads run in order on this thread.
// The launch geometry and the barrier are process globals (like a device's one grid in flight),
// so launches from concurrent Rust tests take turns.
static std::mutex launch_mutex;

template <typename F>
static void launch(unsigned gx, unsigned gy, unsigned bx, bool threaded, F kernel) {
    std::lock_guard<std::mutex> one_grid_at_a_time(launch_mutex);
    gridDim = {gx, gy, 1};
    blockDim = {bx, 1, 1};
    for (unsigned by = 0; by < gy; ++by) {
        for (unsigned b = 0; b < gx; ++b) {
            if (threaded) {
                std::barrier<> bar(bx);
                block_barrier = &bar;
                std::vector<std::thread> threads;
                threads.reserve(bx);
                for (unsigned t = 0; t < bx; ++t) {
                    threads.emplace_back([=] {
                        threadIdx = {t, 0, 0};
                        blockIdx = {b, by, 0};
                        kernel();
                    });
                }
                for (auto& th : threads) th.join();
                block_barrier = nullptr;
            } else {
                for (unsigned t = 0; t < bx; ++t) {
                    threadIdx = {t, 0, 0};
                    blockIdx = {b, by, 0};
                    kernel();
                }
            }
        }
    }
}

static unsigned blocks_for(u64 n, unsigned block) { return (unsigned)((n + block - 1) / block); }

extern "C" {

void bh_ot_argmax(const float* scores, const float* heights, int batch, int n, unsigned block, int* idx,
                  float* best) {
    launch(batch, 1, block, true, [=] { ot_argmax(scores, heights, n, idx, best); });
}

void bh_ot_softmax_rows(float* scores, const float* heights, int batch, int n, float tau, unsigned block,
                        int* status) {
    launch(batch, 1, block, true, [=] { ot_softmax_rows(scores, heights, n, tau, status); });
}

void bh_ot_weighted_sum(const float* w, const half_bits* targets, int batch, int n, int d, unsigned block,
                        float* out) {
    launch(blocks_for(d, block), batch, block, false, [=] { ot_weighted_sum(w, targets, n, d, out); });
}

void bh_gaussian_f32(float* out, u64 n, u64 key) {
    launch(blocks_for(n, BLOCK), 1, BLOCK, false, [=] { gaussian_f32(out, n, key); });
}

void bh_ddim_step_f32(float* x, const float* eps, u64 n, float cx, float ce, float sigma, u64 key) {
    launch(blocks_for(n, BLOCK), 1, BLOCK, false, [=] { ddim_step_f32(x, eps, n, cx, ce, sigma, key); });
}

void bh_ddim_step_f16(half_bits* x, const half_bits* eps, u64 n, float cx, float ce, float sigma, u64 key) {
    launch(blocks_for(n, BLOCK), 1, BLOCK, false, [=] { ddim_step_f16(x, eps, n, cx, ce, sigma, key); });
}
}
