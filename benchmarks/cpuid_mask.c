/* Hide AVX-512, AVX-VNNI and AMX from CPUID, so that a program on an AVX-512 CPU takes the code
 * paths an AVX2-only CPU (Haswell to Alder Lake P-less parts, AMD Zen 1-3) would take.
 *
 * ONNX Runtime (MLAS), numpy and OpenCV pick their kernels from the CPUID instruction at start-up
 * and have no switch to turn AVX-512 off. On a CPU and kernel with CPUID faulting (the `cpuid_fault`
 * flag in /proc/cpuinfo; Linux arch_prctl(ARCH_SET_CPUID)), every CPUID instruction of the process
 * traps (SIGSEGV); the handler below runs the real CPUID, clears the bits of leaf 7 that announce
 * AVX-512, VNNI and AMX, and steps over the instruction. The setting is inherited by threads and
 * forks, and LD_PRELOAD re-applies it after an exec.
 *
 * What it does not change: the clock, caches and memory of the machine, and glibc's string
 * functions, which read CPUID before any library's constructor runs (GLIBC_TUNABLES hides the
 * flags from those). So it measures the AVX2 kernels on this CPU, not an AVX2 CPU.
 *
 *   cc -O2 -shared -fPIC -o cpuid_mask.so benchmarks/cpuid_mask.c
 *   LD_PRELOAD=./cpuid_mask.so python ...      (benchmarks/bench_engine.py --mask-avx512 does it)
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

static volatile unsigned long trapped;

/* How many CPUID instructions were answered with the masked bits (a check that it works). */
unsigned long cpuid_mask_trapped(void) { return trapped; }

static int set_cpuid(int enabled) { return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void on_segv(int sig, siginfo_t *info, void *context) {
  (void)sig;
  (void)info;
  greg_t *reg = ((ucontext_t *)context)->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)reg[REG_RIP];
  if (ip[0] != 0x0f || ip[1] != 0xa2) { /* not CPUID: a real fault, crash as usual */
    signal(SIGSEGV, SIG_DFL);
    return;
  }
  unsigned leaf = (unsigned)reg[REG_RAX], sub = (unsigned)reg[REG_RCX], a, b, c, d;
  set_cpuid(1);
  __cpuid_count(leaf, sub, a, b, c, d);
  set_cpuid(0);
  if (leaf == 7 && sub == 0) {
    /* EBX: AVX512F, DQ, IFMA, PF, ER, CD, BW, VL */
    b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) |
           (1u << 30) | (1u << 31));
    /* ECX: AVX512_VBMI, VBMI2, VNNI, BITALG, VPOPCNTDQ */
    c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    /* EDX: AVX512_4VNNIW, 4FMAPS, VP2INTERSECT, AMX_BF16, AVX512_FP16, AMX_TILE, AMX_INT8 */
    d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    a &= ~((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23)); /* AVX_VNNI, AVX512_BF16, AMX_FP16, AVX_IFMA */
    d &= ~((1u << 4) | (1u << 5) | (1u << 8) | (1u << 19)); /* AVX_VNNI_INT8, NE_CONVERT, AMX_COMPLEX, AVX10 */
  }
  reg[REG_RAX] = a;
  reg[REG_RBX] = b;
  reg[REG_RCX] = c;
  reg[REG_RDX] = d;
  reg[REG_RIP] += 2;
  trapped++;
}

__attribute__((constructor)) static void cpuid_mask_init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_NODEFER;
  sigaction(SIGSEGV, &sa, 0);
  if (set_cpuid(0) != 0) {
    static const char msg[] = "cpuid_mask: this CPU or kernel has no CPUID faulting (no cpuid_fault "
                              "flag in /proc/cpuinfo): the AVX2 paths cannot be forced here\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
  }
}
