// glibc allocator tuning for large tensors.
#include "core/allocator.h"

#include <malloc.h>

#include <cstdlib>

namespace runner::core {

std::string tune_allocator() {
  const char* env = std::getenv("HAC_MALLOC_TUNE");
  if (env != nullptr && std::string(env) == "0") return "allocator: glibc defaults (HAC_MALLOC_TUNE=0)";
  // 1 GiB: blocks below come from the heap and are reused; the heap is trimmed only once 2 GiB
  // of free memory sits at its top. Memory stays with the process at its peak, as with any
  // caching allocator.
  constexpr int kMmapThreshold = 1 << 30;
  constexpr int kTrimThreshold = 2047 << 20;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1;
  return ok ? "allocator: large blocks kept on the heap (HAC_MALLOC_TUNE=0 to disable)"
            : "allocator: mallopt refused the thresholds; glibc defaults in effect";
}

}  // namespace runner::core
