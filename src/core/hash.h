// FNV-1a, 64 bits: a hash of text that is the same on every platform and standard library (run
// ids, the validation split's fingerprint, import's per-key split, selection draws), and a mixer.
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

// splitmix64's finaliser: a well-mixed 64-bit value from any 64-bit input (seeds of per-key and
// per-row draws: import's split, the loader's crops).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace runner::core
