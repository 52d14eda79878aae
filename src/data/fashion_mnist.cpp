// Fashion-MNIST builder: IDX files -> HDF5 image-text dataset with a concept hierarchy.
#include "data/fashion_mnist.h"

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <tuple>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "data/dataset.h"

namespace runner::data {
namespace {

// The leaf classes in label order, each with its parent (WordNet: shirt, trouser, sweater,
// dress and coat are garments -> clothing; sandal, shoe and boot are footwear; bag is a
// container, here "accessory").
constexpr int32_t kClothing = 10, kFootwear = 11, kAccessory = 12;

struct ClassText {
  const char* name;     // concept name
  const char* phrase;   // noun phrase with its article
  int32_t parent;
};
constexpr std::array<ClassText, 10> kClasses = {{
    {"t-shirt", "a t-shirt", kClothing},
    {"trouser", "a pair of trousers", kClothing},
    {"pullover", "a pullover", kClothing},
    {"dress", "a dress", kClothing},
    {"coat", "a coat", kClothing},
    {"sandal", "a sandal", kFootwear},
    {"shirt", "a shirt", kClothing},
    {"sneaker", "a sneaker", kFootwear},
    {"bag", "a bag", kAccessory},
    {"ankle boot", "an ankle boot", kFootwear},
}};
constexpr std::array<const char*, 3> kParents = {"clothing", "footwear", "accessory"};

std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw IoError(fmt::format("cannot open {} (install Debian's dataset-fashion-mnist, or pass --source DIR)", path));
  }
  std::vector<uint8_t> out;
  std::array<uint8_t, 1 << 16> buf{};
  int n = 0;
  while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) out.insert(out.end(), buf.begin(), buf.begin() + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  const bool ok = n == 0 && err == Z_OK;
  const std::string why = msg != nullptr ? msg : "";
  gzclose(f);
  if (!ok) throw IoError(fmt::format("{}: corrupt gzip stream ({})", path, why));
  return out;
}

uint32_t be32(const std::vector<uint8_t>& b, size_t at) {
  return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) | b[at + 3];
}

// IDX: magic 0x00000803 (images, dims n, rows, cols) or 0x00000801 (labels, dim n).
at::Tensor read_idx_images(const std::string& path) {
  auto b = read_gz(path);
  if (b.size() < 16 || be32(b, 0) != 0x803) throw IoError(fmt::format("{}: not an IDX image file", path));
  const int64_t n = be32(b, 4), h = be32(b, 8), w = be32(b, 12);
  if (static_cast<int64_t>(b.size()) != 16 + n * h * w) {
    throw IoError(fmt::format("{}: {} bytes for {} images of {}x{}", path, b.size(), n, h, w));
  }
  return at::from_blob(b.data() + 16, {n, h, w, 1}, at::kByte).clone();
}

std::vector<int32_t> read_idx_labels(const std::string& path) {
  auto b = read_gz(path);
  if (b.size() < 8 || be32(b, 0) != 0x801) throw IoError(fmt::format("{}: not an IDX label file", path));
  const size_t n = be32(b, 4);
  if (b.size() != 8 + n) throw IoError(fmt::format("{}: {} bytes for {} labels", path, b.size(), n));
  std::vector<int32_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = b[8 + i];
    if (out[i] > 9) throw IoError(fmt::format("{}: label {} at {} is not a Fashion-MNIST class", path, out[i], i));
  }
  return out;
}

// Unbiased draw in [0, n) from a 64-bit generator (fixed across standard libraries, unlike
// std::uniform_int_distribution).
uint64_t draw(std::mt19937_64& g, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x = 0;
  do x = g(); while (x >= limit);
  return x % n;
}

// The first `keep` rows of a seeded shuffle that takes classes in turn, so a subset stays
// balanced; all rows (in file order) when keep is 0 or at least the size.
std::vector<int64_t> pick(const std::vector<int32_t>& labels, int64_t keep, std::mt19937_64& g) {
  const auto n = static_cast<int64_t>(labels.size());
  std::vector<int64_t> rows;
  if (keep <= 0 || keep >= n) {
    for (int64_t i = 0; i < n; ++i) rows.push_back(i);
    return rows;
  }
  std::array<std::vector<int64_t>, 10> by_class;
  for (int64_t i = 0; i < n; ++i) by_class[labels[i]].push_back(i);
  for (auto& v : by_class) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[draw(g, i)]);
  }
  for (size_t k = 0; static_cast<int64_t>(rows.size()) < keep; ++k) {
    for (auto& v : by_class) {
      if (k < v.size() && static_cast<int64_t>(rows.size()) < keep) rows.push_back(v[k]);
    }
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace

const ConceptTable& fashion_mnist_concepts() {
  static const ConceptTable table = [] {
    ConceptTable t;
    for (const auto& c : kClasses) {
      t.names.emplace_back(c.name);
      t.parent.push_back(c.parent);
    }
    for (const char* p : kParents) {
      t.names.emplace_back(p);
      t.parent.push_back(-1);
    }
    return t;
  }();
  return table;
}

std::string fashion_mnist_caption(int32_t label, uint64_t k) {
  const ClassText& c = kClasses.at(static_cast<size_t>(label));
  const char* parent = kParents.at(static_cast<size_t>(c.parent - kClothing));
  // Specific, mixed and general phrasings: MERU's entailment loss needs general captions whose
  // cones contain the specific ones. None of them is a zero-shot prompt: the default templates
  // (eval.templates: "a photo of a {}.", "a black and white photo of a {}.", "a small picture of a
  // {}.", "{}") filled with any concept name never equal a caption (kCaptionSet 2; a unit test
  // checks it), so unlearning never optimises the evaluation strings themselves.
  switch (k % 8) {
    case 0: return fmt::format("a picture showing {}.", c.phrase);
    case 1: return fmt::format("a greyscale image of {}.", c.phrase);
    case 2: return fmt::format("{} : {}", parent, c.phrase);
    case 3: return fmt::format("{}, a kind of {}.", c.phrase, parent);
    case 4: return fmt::format("a small image of {}.", c.phrase);
    case 5: return fmt::format("a kind of {}.", parent);
    case 6: return fmt::format("an image of {}.", parent);
    default: return fmt::format("{} on a plain background", c.name);
  }
}

void build_fashion_mnist(const FashionMnistOptions& o) {
  if (o.out.empty()) throw ConfigError("hac data fashion-mnist: --out FILE is required");
  std::mt19937_64 g(o.seed);
  DatasetWriter writer(o.out);
  for (const auto& [split, prefix, keep] :
       {std::tuple<std::string, std::string, int64_t>{"train", "train", o.max_train}, {"test", "t10k", o.max_test}}) {
    at::Tensor images = read_idx_images(o.source_dir + "/" + prefix + "-images-idx3-ubyte.gz");
    std::vector<int32_t> labels = read_idx_labels(o.source_dir + "/" + prefix + "-labels-idx1-ubyte.gz");
    if (images.size(0) != static_cast<int64_t>(labels.size())) {
      throw IoError(fmt::format("{}: {} images but {} labels", o.source_dir, images.size(0), labels.size()));
    }
    std::vector<int64_t> rows = pick(labels, keep, g);
    std::vector<std::string> captions;
    std::vector<int32_t> concepts;
    for (int64_t r : rows) {
      concepts.push_back(labels[static_cast<size_t>(r)]);
      captions.push_back(fashion_mnist_caption(labels[static_cast<size_t>(r)], g()));
    }
    at::Tensor picked = images.index_select(0, at::tensor(rows, at::kLong));
    writer.append(split, picked, captions, concepts);
    core::log_info("fashion-mnist: {} rows of {}", rows.size(), split);
  }
  const ConceptTable& t = fashion_mnist_concepts();
  writer.set_concepts(t.names, t.parent);
  writer.set_attribute("builder", "hac data fashion-mnist");
  writer.set_attribute("caption_set", std::to_string(kCaptionSet));
  writer.set_attribute("seed", std::to_string(o.seed));
  writer.set_attribute("source", "Fashion-MNIST (Debian dataset-fashion-mnist)");
  writer.commit();
  core::log_info("fashion-mnist: wrote {}", o.out);
}

}  // namespace runner::data
