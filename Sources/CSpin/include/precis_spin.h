#ifndef PRECIS_SPIN_H
#define PRECIS_SPIN_H

/// A spin-wait hint: x86 `pause` / AArch64 `yield`. Lets a spinning thread wait on a shared
/// variable without starving its sibling hyper-thread or flooding the memory system.
static inline void precis_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
