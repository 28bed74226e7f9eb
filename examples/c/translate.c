/* brenier's C API: translate BUNDLE IN.npy OUT.f32 [STEPS]; IN.npy: little-endian float32 [N, C, H, W], npy 1.0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "brenier.h"
static int fail(const char *why) { fprintf(stderr, "%s\n", why); return 1; }
int main(int argc, char **argv) {
    BrenierEngine *e; BrenierTimings t; uint32_t c, h, w; unsigned char head[10]; FILE *in, *out;
    if (argc < 4) return fail("usage: translate BUNDLE IN.npy OUT.f32 [STEPS]");
    if (!(in = fopen(argv[2], "rb")) || fread(head, 1, 10, in) != 10 || memcmp(head, "\x93NUMPY\x01", 7)) return fail("IN.npy: not an npy 1.0 file");
    if (brenier_open(argv[1], NULL, &e) || brenier_image_shape(e, &c, &h, &w)) return fail(brenier_last_error());
    long start = 10 + (head[8] | head[9] << 8), n = (fseek(in, 0, SEEK_END) ? 0 : ftell(in) - start) / (4L * c * h * w);
    size_t d = n > 0 ? (size_t)n * c * h * w : 0; float *x = malloc(d * 4 + 4), *y = malloc(d * 4 + 4);
    if (!d || !x || !y || fseek(in, start, SEEK_SET) || fread(x, 4, d, in) != d || fclose(in)) return fail("IN.npy: no images of the bundle's size");
    BrenierTranslateOptions o = brenier_translate_options_default(); o.steps = argc > 4 ? atoi(argv[4]) : 0;
    if (brenier_translate(e, x, (size_t)n, y, &o, &t)) return fail(brenier_last_error());
    if (!(out = fopen(argv[3], "wb")) || fwrite(y, 4, d, out) != d || fclose(out)) return fail("cannot write OUT.f32");
    printf("%ld images, %u NFE: encode %.3f s, map %.3f s, decode %.3f s\n", n, t.nfe, t.encode_s, t.map_s, t.decode_s);
    brenier_close(e); free(x); free(y); return 0; }
