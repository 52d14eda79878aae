// The embedded default dataset: Fashion-MNIST (Debian's dataset-fashion-mnist) as an image-text
// HDF5 file with a concept hierarchy and captions that mix specific and general phrasings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace runner::data {

// Debian's install location of the IDX files.
constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct FashionMnistOptions {
  std::string source_dir = kFashionMnistDir;
  std::string out;
  uint64_t seed = 0;
  int64_t max_train = 0;  // 0 = all 60000; otherwise the first N of a seeded per-class-balanced pick
  int64_t max_test = 0;   // 0 = all 10000
};

// The concept table (docs/data-format.md): the ten classes (concept = label) and their parents.
struct ConceptTable {
  std::vector<std::string> names;
  std::vector<int32_t> parent;
};
const ConceptTable& fashion_mnist_concepts();

// Caption of a sample of class `label`, the k-th phrasing (deterministic; k from the seed).
std::string fashion_mnist_caption(int32_t label, uint64_t k);
// The version of the caption phrasings, written as the file's attribute caption_set (2: disjoint
// from the default zero-shot prompts; `make run` rebuilds an older file).
constexpr int kCaptionSet = 2;

// Reads the four IDX files (gzip) and writes the dataset atomically. Progress goes to the log.
// Throws IoError naming the file on a missing or malformed IDX file, or a failed write.
void build_fashion_mnist(const FashionMnistOptions& opts);

}  // namespace runner::data
