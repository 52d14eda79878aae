// Atomic file writes (temp file beside the target, fsync, rename, fsync of the directory) and
// whole-file reads, for every output a crash or preemption must not leave half-written.
#pragma once

#include <cstddef>
#include <string>

namespace runner::core {

// Writes `size` bytes to `path` atomically: readers see the old file or the new one, never a
// mix. Throws IoError naming the file on any failure (the temp file is removed).
void write_file_atomically(const std::string& path, const char* data, size_t size);
void write_file_atomically(const std::string& path, const std::string& text);

// The whole file; IoError naming it when it cannot be read.
std::string read_text_file(const std::string& path);

}  // namespace runner::core
