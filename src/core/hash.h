// FNV-1a, 64 bits: a hash of text that is the same on every platform and standard library (run
// ids, the validation split's fingerprint, import's per-key split, selection draws).
#pragma once

#include <cstdint>
#include <string_view>

namespace runner::core {

inline uint64_t fnv1a64(std::string_view text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace runner::core
