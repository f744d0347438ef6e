/*
 * Which BLAS kernels run, and a warning when OpenBLAS runs kernels older than
 * the CPU.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's, most distributions') picks its
 * kernels for the CPU model it detects when it loads. A model newer than the
 * library (OpenBLAS 0.3.21 and some recent Xeons, for one) falls back to the
 * SSE3 "Prescott" kernels, several times slower than the AVX2 or AVX-512 ones
 * the CPU can run, with no message. OPENBLAS_CORETYPE, read when the library
 * loads, overrides the choice; this file names the value to set.
 *
 * The OpenBLAS functions are weak references: with another BLAS they are
 * NULL and both functions here do nothing.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "taskrel/core.h"

extern char *openblas_get_config(void) __attribute__((weak));
extern char *openblas_get_corename(void) __attribute__((weak));

const char *tr_blas_config(void) {
    const char *s = openblas_get_config ? openblas_get_config() : NULL;
    return s ? s : "";
}

/* OpenBLAS x86-64 kernel sets with AVX2 and FMA; any other name on a CPU
 * that has them is a fallback. */
static int has_avx2_kernels(const char *core) {
    static const char *const k_avx2[] = {"haswell", "zen", "skylakex", "cooperlake",
                                         "sapphirerapids"};
    for (size_t i = 0; i < sizeof(k_avx2) / sizeof(k_avx2[0]); i++)
        if (strcasecmp(core, k_avx2[i]) == 0)
            return 1;
    return 0;
}

int tr_blas_kernel_advice(char *buf, size_t n) {
    buf[0] = '\0';
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char *core = openblas_get_corename ? openblas_get_corename() : NULL;
    if (!core || !core[0] || has_avx2_kernels(core))
        return 0;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
        return 0;
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    snprintf(buf, n,
             "OpenBLAS runs its %s kernels, although this CPU has AVX2%s: it did not recognise "
             "the CPU. Its GEMMs run several times slower; set OPENBLAS_CORETYPE=%s in the job's "
             "environment (for every rank) to use the %s kernels",
             core, avx512 ? " and AVX-512" : " and FMA", avx512 ? "SkylakeX" : "Haswell",
             avx512 ? "AVX-512" : "AVX2");
    return 1;
#else
    (void)n;
    return 0;
#endif
}
