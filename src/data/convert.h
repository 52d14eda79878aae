// `hac data convert`: a dataset file rewritten with the other image storage (docs/data-format.md):
// pixels -> jpeg (each row encoded at a quality) or jpeg -> pixels (each row decoded as read()
// decodes it, so the pixel file reads exactly as the JPEG file does).
#pragma once

#include <string>

namespace runner::data {

struct ConvertOptions {
  std::string in, out;
  std::string storage = "jpeg";  // the storage of `out`: pixels | jpeg
  int jpeg_quality = 95;
  int threads = 0;               // encode/decode threads; 0 = the machine's cores
};

// Writes opts.out (as <out>.partial, renamed when complete) with every split, row, caption,
// concept, the concept tables and the attributes of opts.in. ConfigError when `in` already has
// the asked-for storage or an option is out of range; IoError naming the file on a read or write failure.
void convert_dataset(const ConvertOptions& opts);

}  // namespace runner::data
