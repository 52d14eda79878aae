// SHA-256 (FIPS 180-4) of bytes and of files, for provenance: result.json records the digest of the
// dataset file and of the checkpoint a run starts from, comparable with `sha256sum`. No torch here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace runner::core {

// Incremental SHA-256: update() any number of times, then hex_digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // The 64 lowercase hex digits of the digest; the object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const unsigned char* p);
  uint32_t h_[8];
  unsigned char buf_[64];
  size_t used_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(const std::string& bytes);

// The digest of the file at `path`, read in 1 MiB pieces. IoError naming the file when it cannot be
// read. With use_cache, digests are kept in ${XDG_CACHE_HOME:-$HOME/.cache}/hac/sha256.tsv keyed by
// the file's absolute path, size and modification time, so a sweep hashes a large dataset once
// (set HAC_NO_HASH_CACHE=1 to always read the file).
std::string sha256_file(const std::string& path, bool use_cache = true);

}  // namespace runner::core
