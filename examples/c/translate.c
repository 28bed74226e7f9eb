/* brenier's C API: translate BUNDLE IN.npy OUT.f32 [STEPS]; IN.npy: float32 [N, C, H, W], model space. */
#include <stdio.h>
#include <stdlib.h>
#include "brenier.h"
int main(int argc, char **argv) {
    BrenierEngine *e; uint32_t c, h, w; uint16_t hl; long bytes; FILE *in, *out;
    if (argc < 4 || !(in = fopen(argv[2], "rb"))) return fprintf(stderr, "usage: translate BUNDLE IN.npy OUT.f32 [STEPS]\n"), 2;
    if (brenier_open(argv[1], NULL, &e) != BRENIER_STATUS_OK) return fprintf(stderr, "%s\n", brenier_last_error()), 1;
    brenier_image_shape(e, &c, &h, &w);
    fseek(in, 8, SEEK_SET); fread(&hl, 2, 1, in); fseek(in, 0, SEEK_END); bytes = ftell(in) - 10 - hl; fseek(in, 10 + hl, SEEK_SET);
    size_t n = bytes / (4 * c * h * w), d = n * c * h * w; float *x = malloc(d * 4), *y = malloc(d * 4);
    if (fread(x, 4, d, in) != d) return fprintf(stderr, "%s: short read\n", argv[2]), 1;
    BrenierTranslateOptions o = brenier_translate_options_default(); BrenierTimings t;
    o.steps = argc > 4 ? atoi(argv[4]) : 0;
    if (brenier_translate(e, x, n, y, &o, &t) != BRENIER_STATUS_OK) return fprintf(stderr, "%s\n", brenier_last_error()), 1;
    if (!(out = fopen(argv[3], "wb")) || fwrite(y, 4, d, out) != d || fclose(out)) return perror(argv[3]), 1;
    printf("%zu images, %u NFE: encode %.3f s, map %.3f s, decode %.3f s\n", n, t.nfe, t.encode_s, t.map_s, t.decode_s);
    brenier_close(e); free(x); free(y); return 0;
}
