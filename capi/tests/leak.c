/* leak BUNDLE CYCLES: open → translate one image (K = 1) → close, 200 warm-up cycles then CYCLES
   more; prints the resident set (KiB) after the warm-up and after the last cycle. The warm-up is
   long because the allocator's arenas (each open starts a thread pool) settle over the first
   few hundred cycles: after 20 the set still moved by up to 6 MiB, and not in step with the
   cycle count (+5.7 MiB over the next 400 cycles, +0.8 MiB over the next 1200). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "brenier.h"

static long rss_kib(void) {
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    if (f) fclose(f);
    return kib;
}

int main(int argc, char **argv) {
    if (argc < 3) return fprintf(stderr, "usage: leak BUNDLE CYCLES\n"), 2;
    long before = 0, cycles = atol(argv[2]);
    for (long i = 0; i < 200 + cycles; i++) {
        if (i == 200) before = rss_kib();
        BrenierEngine *e;
        uint32_t c, h, w;
        if (brenier_open(argv[1], NULL, &e) || brenier_image_shape(e, &c, &h, &w))
            return fprintf(stderr, "%s\n", brenier_last_error()), 1;
        size_t d = (size_t)c * h * w;
        float *x = calloc(d, sizeof *x), *y = calloc(d, sizeof *y);
        BrenierTranslateOptions o = brenier_translate_options_default();
        o.steps = 1;
        if (!x || !y || brenier_translate(e, x, 1, y, &o, NULL))
            return fprintf(stderr, "%s\n", brenier_last_error()), 1;
        free(x);
        free(y);
        brenier_close(e);
    }
    printf("%ld %ld\n", before, rss_kib());
    return 0;
}
