// Process-wide settings applied once at start-up, before any large allocation.
#pragma once

#include <string>

namespace runner::core {

// Keeps large blocks on glibc's heap and stops it returning them to the kernel after each free.
// By default glibc serves every block >= 32 MB with a fresh mmap, so each such tensor pays a
// page fault per 4 KB page when first touched (~11 us each on the VMs measured, 180 ms for
// 64 MB; docs/benchmarks.md). HAC_MALLOC_TUNE=0 leaves glibc's defaults. Returns a line for
// the log saying what was done.
std::string tune_allocator();

}  // namespace runner::core
