/* The C side of benches/interfaces: translate_loop BUNDLE IN.npy CALLS WARMUP THREADS times
 * brenier_translate (OT-ALD, K = 10, one batch) CALLS times after WARMUP untimed calls and prints
 * {"interface": "c", "seconds": [...]}. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "brenier.h"

static int fail(const char *why) { fprintf(stderr, "%s\n", why); return 1; }

int main(int argc, char **argv) {
    if (argc != 6) return fail("usage: translate_loop BUNDLE IN.npy CALLS WARMUP THREADS");
    int calls = atoi(argv[3]), warmup = atoi(argv[4]);
    BrenierOpenOptions oo = brenier_open_options_default();
    oo.threads = (uint32_t)atoi(argv[5]);
    BrenierEngine *e;
    uint32_t c, h, w;
    if (brenier_open(argv[1], &oo, &e) || brenier_image_shape(e, &c, &h, &w)) return fail(brenier_last_error());
    unsigned char head[10];
    FILE *in = fopen(argv[2], "rb");
    if (!in || fread(head, 1, 10, in) != 10 || memcmp(head, "\x93NUMPY\x01", 7)) return fail("IN.npy: not an npy 1.0 file");
    long start = 10 + (head[8] | head[9] << 8);
    long n = (fseek(in, 0, SEEK_END) ? 0 : ftell(in) - start) / (4L * c * h * w);
    size_t d = n > 0 ? (size_t)n * c * h * w : 0;
    float *x = malloc(d * 4 + 4), *y = malloc(d * 4 + 4);
    if (!d || !x || !y || fseek(in, start, SEEK_SET) || fread(x, 4, d, in) != d) return fail("IN.npy: no images");
    fclose(in);
    BrenierTranslateOptions o = brenier_translate_options_default();
    o.steps = 10;
    for (int i = 0; i < warmup; i++)
        if (brenier_translate(e, x, (size_t)n, y, &o, NULL)) return fail(brenier_last_error());
    printf("{\"interface\": \"c\", \"seconds\": [");
    for (int i = 0; i < calls; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (brenier_translate(e, x, (size_t)n, y, &o, NULL)) return fail(brenier_last_error());
        clock_gettime(CLOCK_MONOTONIC, &t1);
        printf("%s%.9f", i ? ", " : "", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    printf("]}\n");
    brenier_close(e);
    free(x);
    free(y);
    return 0;
}
