// The HDF5 dataset format: writer/reader round trips, atomic publication, files written by
// h5py alone (the h5py_files fixture), and a clear error for every broken contract rule.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>
#include <numeric>
#include <map>

#include "core/error.h"
#include "data/dataset.h"
#include "config/config.h"
#include "data/fashion_mnist.h"
#include "data/image_import.h"

namespace runner::data {
namespace {

std::string temp_path(const std::string& name) {
  const char* base = std::getenv("TMPDIR");
  return std::string(base != nullptr ? base : "/tmp") + "/hac_test_" + std::to_string(::getpid()) + "_" + name;
}

bool exists(const std::string& p) { return std::ifstream(p).good(); }

struct Written {
  at::Tensor images;
  std::vector<std::string> captions;
  std::vector<int32_t> concepts;
};

Written make_rows(int64_t n, int64_t c, uint64_t seed) {
  at::manual_seed(static_cast<int64_t>(seed));
  Written w;
  w.images = at::randint(0, 256, {n, 4, 3, c}, at::kByte);
  for (int64_t i = 0; i < n; ++i) {
    w.captions.push_back("caption " + std::to_string(i) + (i % 3 == 0 ? " \xc3\xa9t\xc3\xa9 \xe2\x9c\x93" : ""));
    w.concepts.push_back(static_cast<int32_t>(i % 4) - 1);
  }
  return w;
}

std::string write_file(const std::string& name, const Written& train, const Written& test) {
  const std::string path = temp_path(name);
  DatasetWriter w(path);
  // In two appends, to exercise extension.
  const int64_t half = train.images.size(0) / 2;
  auto slice = [](const auto& v, int64_t a, int64_t b) { return std::vector(v.begin() + a, v.begin() + b); };
  w.append("train", train.images.narrow(0, 0, half), slice(train.captions, 0, half), slice(train.concepts, 0, half));
  const int64_t n = train.images.size(0);
  w.append("train", train.images.narrow(0, half, n - half), slice(train.captions, half, n), slice(train.concepts, half, n));
  w.append("test", test.images, test.captions, test.concepts);
  w.set_concepts({"sandal", "sneaker", "footwear"}, {2, 2, -1});
  w.set_attribute("builder", "unit test");
  w.commit();
  return path;
}

TEST(Dataset, WriteThenReadRowsInAnyOrder) {
  Written train = make_rows(23, 3, 1), test = make_rows(5, 3, 2);
  const std::string path = write_file("roundtrip.h5", train, test);
  auto f = DatasetFile::open(path);
  EXPECT_EQ(f->info().splits.at("train").size, 23);
  EXPECT_EQ(f->info().splits.at("test").image.channels, 3);
  EXPECT_EQ(f->info().concept_names, (std::vector<std::string>{"sandal", "sneaker", "footwear"}));
  EXPECT_EQ(f->info().concept_parent, (std::vector<int32_t>{2, 2, -1}));
  EXPECT_EQ(f->info().attributes.at("builder"), "unit test");
  EXPECT_EQ(f->info().attributes.at("format"), kDatasetFormat);
  EXPECT_EQ(f->concepts("train"), train.concepts);
  std::vector<int64_t> rows = {5, 6, 7, 0, 22, 3, 3, 11};  // runs, jumps, a repeat
  Rows got = f->read("train", rows);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_TRUE(got.images[i].equal(train.images[rows[i]])) << i;
    EXPECT_EQ(got.captions[i], train.captions[rows[i]]);
    EXPECT_EQ(got.concepts[i], train.concepts[rows[i]]);
  }
  Rows all = f->read_range("test", 0, 5);
  EXPECT_TRUE(all.images.equal(test.images));
  EXPECT_EQ(all.captions, test.captions);
  EXPECT_THROW(f->read("train", {23}), IoError);
  EXPECT_THROW(f->read("valid", {0}), IoError);
  const std::string text = describe_dataset(*f);
  EXPECT_NE(text.find("train: 23 rows, images 4x3x3 uint8"), std::string::npos) << text;
  EXPECT_NE(text.find("footwear\n    sandal\n    sneaker"), std::string::npos) << text;
  std::remove(path.c_str());
}

// /concept_display_names: written when given, read back, shown by `hac data info`; a count that
// does not match the concept names is refused at commit.
TEST(Dataset, DisplayNamesRoundTripAndAreChecked) {
  Written train = make_rows(8, 3, 3), test = make_rows(4, 3, 4);
  const std::string path = temp_path("display.h5");
  {
    DatasetWriter w(path);
    w.append("train", train.images, train.captions, train.concepts);
    w.append("test", test.images, test.captions, test.concepts);
    w.set_concepts({"sandal", "sneaker", "footwear"}, {2, 2, -1});
    w.set_display_names({"flip flop", "sneaker", "shoes"});
    w.commit();
  }
  auto f = DatasetFile::open(path);
  EXPECT_EQ(f->info().display_names, (std::vector<std::string>{"flip flop", "sneaker", "shoes"}));
  const std::string text = describe_dataset(*f);
  EXPECT_NE(text.find("(prompts: \"flip flop\")"), std::string::npos) << text;
  EXPECT_EQ(text.find("(prompts: \"sneaker\")"), std::string::npos) << text;  // equal names are not repeated
  std::remove(path.c_str());
  // Without display names the field stays empty (prompts use the concept names).
  const std::string plain = write_file("plain.h5", train, test);
  EXPECT_TRUE(DatasetFile::open(plain)->info().display_names.empty());
  std::remove(plain.c_str());

  const std::string bad = temp_path("display_bad.h5");
  DatasetWriter w(bad);
  w.append("train", train.images, train.captions, train.concepts);
  w.append("test", test.images, test.captions, test.concepts);
  w.set_concepts({"sandal", "sneaker", "footwear"}, {2, 2, -1});
  w.set_display_names({"flip flop"});
  EXPECT_THROW(w.commit(), IoError);
  EXPECT_FALSE(exists(bad));
}

// data.val_fraction: "val" is a stratified, seeded part of the file's train split, "train" the
// rest; both read the file's rows, test is untouched, and the same seed gives the same rows.
TEST(Dataset, ValidationSplitIsCarvedFromTrainDisjointAndStable) {
  Written train = make_rows(40, 1, 3), test = make_rows(6, 1, 4);
  const std::string path = write_file("holdout.h5", train, test);
  auto f = DatasetFile::open(path, Holdout{0.25, 7});
  const auto& info = f->info();
  // Four concept groups (-1, 0, 1, 2) of 10 rows: round(0.25 x 10) = 3 held out from each.
  ASSERT_EQ(info.splits.at("val").size, 12);
  ASSERT_EQ(info.splits.at("train").size, 28);
  EXPECT_EQ(info.splits.at("test").size, 6);
  EXPECT_EQ(info.val_fingerprint.size(), 16u);
  std::map<int32_t, int> per_concept;
  for (int32_t c : f->concepts("val")) ++per_concept[c];
  EXPECT_EQ(per_concept, (std::map<int32_t, int>{{-1, 3}, {0, 3}, {1, 3}, {2, 3}}));
  // Every file row is in exactly one of the two parts: captions are unique per row.
  std::vector<int64_t> all_val(12), all_train(28);
  std::iota(all_val.begin(), all_val.end(), 0);
  std::iota(all_train.begin(), all_train.end(), 0);
  const Rows v = f->read("val", all_val), t = f->read("train", all_train);
  std::set<std::string> seen;
  for (const auto* part : {&v, &t}) {
    for (size_t i = 0; i < part->captions.size(); ++i) {
      EXPECT_TRUE(seen.insert(part->captions[i]).second) << part->captions[i];
      const auto row = std::find(train.captions.begin(), train.captions.end(), part->captions[i]) - train.captions.begin();
      ASSERT_LT(row, 40);
      EXPECT_TRUE(part->images[static_cast<int64_t>(i)].equal(train.images[row]));
      EXPECT_EQ(part->concepts[i], train.concepts[static_cast<size_t>(row)]);
    }
  }
  EXPECT_EQ(seen.size(), 40u);
  EXPECT_THROW(f->read("val", {12}), IoError);
  // Same seed, same rows; another seed, other rows; no holdout, no val split.
  auto again = DatasetFile::open(path, Holdout{0.25, 7});
  EXPECT_EQ(again->read("val", all_val, false).captions, v.captions);
  EXPECT_EQ(again->info().val_fingerprint, info.val_fingerprint);
  EXPECT_NE(DatasetFile::open(path, Holdout{0.25, 8})->info().val_fingerprint, info.val_fingerprint);
  auto plain = DatasetFile::open(path);
  EXPECT_EQ(plain->info().splits.count("val"), 0u);
  EXPECT_THROW(plain->concepts("val"), IoError);
  EXPECT_NE(describe_dataset(*f).find("validation split: 0.25"), std::string::npos);
  std::remove(path.c_str());
}

TEST(Dataset, AnUncommittedWriterLeavesNothingThatLooksComplete) {
  const std::string path = temp_path("interrupted.h5");
  {
    DatasetWriter w(path);
    Written rows = make_rows(4, 1, 3);
    w.append("train", rows.images, rows.captions, rows.concepts);
    EXPECT_TRUE(exists(path + ".partial"));
    EXPECT_FALSE(exists(path));
  }  // destroyed without commit, as when an exception unwinds a builder
  EXPECT_FALSE(exists(path));
  EXPECT_FALSE(exists(path + ".partial"));
}

TEST(Dataset, CommitRefusesIncompleteContents) {
  const std::string path = temp_path("incomplete.h5");
  DatasetWriter w(path);
  Written rows = make_rows(4, 1, 3);
  w.append("train", rows.images, rows.captions, rows.concepts);
  w.set_concepts({"a", "b", "c"}, {});
  try {
    w.commit();
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("test split"), std::string::npos) << e.what();
  }
  Written bad = make_rows(2, 3, 4);
  EXPECT_THROW(w.append("train", bad.images, bad.captions, bad.concepts), IoError);  // shape changed
  EXPECT_THROW(w.append("train", rows.images, {"one"}, rows.concepts), IoError);      // lengths
  EXPECT_THROW(w.set_concepts({"a", "b"}, {1, 0}), IoError);                          // cycle
}

TEST(Dataset, NotADatasetFile) {
  EXPECT_THROW(DatasetFile::open("/no/such/file.h5"), IoError);
  const std::string path = temp_path("text.h5");
  std::ofstream(path) << "not hdf5";
  try {
    DatasetFile::open(path);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("not an HDF5 file"), std::string::npos);
  }
  std::remove(path.c_str());
}

std::string fixture_dir() {
  const char* dir = std::getenv("HAC_H5PY_FIXTURES");
  if (dir == nullptr || *dir == '\0') throw std::runtime_error("HAC_H5PY_FIXTURES is not set: run through ctest");
  return dir;
}

nlohmann::json expected() {
  std::ifstream in(fixture_dir() + "/expected.json");
  return nlohmann::json::parse(in);
}

// Files written by h5py alone, with variable- or fixed-length strings and int32 or int64
// concepts, read exactly.
TEST(H5pyFiles, ReadExactly) {
  for (auto& [file, want] : expected()["good"].items()) {
    auto f = DatasetFile::open(fixture_dir() + "/" + file);
    EXPECT_EQ(f->info().concept_names, want["concept_names"].get<std::vector<std::string>>()) << file;
    if (want.contains("concept_parent")) {
      EXPECT_EQ(f->info().concept_parent, want["concept_parent"].get<std::vector<int32_t>>());
    } else {
      EXPECT_TRUE(f->info().concept_parent.empty());
    }
    for (auto& [split, s] : want["splits"].items()) {
      const auto shape = s["shape"].get<std::vector<int64_t>>();
      Rows rows = f->read_range(split, 0, shape[0]);
      EXPECT_EQ(rows.images.sizes().vec(), shape) << file;
      const auto pixels = s["images"].get<std::vector<int64_t>>();
      EXPECT_TRUE(rows.images.flatten().to(at::kLong).equal(at::tensor(pixels, at::kLong))) << file << " " << split;
      EXPECT_EQ(rows.captions, s["captions"].get<std::vector<std::string>>()) << file;
      EXPECT_EQ(rows.concepts, s["concept"].get<std::vector<int32_t>>()) << file;
    }
  }
}

// The JPEG storage's layout written by h5py (docs/data-format.md's snippet) opens with its
// sizes and shape; encoded bytes come back exactly.
TEST(H5pyFiles, JpegLayoutOpens) {
  auto f = DatasetFile::open(fixture_dir() + "/good_jpeg.h5");
  EXPECT_EQ(f->info().storage, kStorageJpeg);
  EXPECT_EQ(f->info().splits.at("train").size, 5);
  EXPECT_EQ(f->info().splits.at("train").image.height, 8);
  const Rows r = f->read_encoded("train", {4, 1});
  ASSERT_EQ(r.encoded.size(), 2u);
  EXPECT_EQ(r.encoded[0], std::string("\xff\xd8\xff") + std::string(14, '\x04'));
  EXPECT_EQ(r.encoded[1], std::string("\xff\xd8\xff") + std::string(11, '\x01'));
  EXPECT_EQ(r.captions, (std::vector<std::string>{"row 4", "row 1"}));
  EXPECT_THROW(f->read("train", {0}), IoError);  // not a decodable JPEG: named when read
}

TEST(H5pyFiles, EveryBrokenRuleIsNamed) {
  for (auto& [file, must] : expected()["broken"].items()) {
    const std::string path = fixture_dir() + "/" + file;
    try {
      DatasetFile::open(path);
      ADD_FAILURE() << file << " was accepted";
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(must.get<std::string>()), std::string::npos) << file << ": " << msg;
    }
  }
}

}  // namespace
}  // namespace runner::data

namespace runner::data {
namespace {

// Debian's dataset-fashion-mnist is a build dependency (scripts/install-deps.sh).
TEST(FashionMnist, BalancedSubsetsWithAHierarchyDeterministicForASeed) {
  auto build = [](uint64_t seed, const std::string& name) {
    FashionMnistOptions o;
    o.out = temp_path(name);
    o.seed = seed;
    o.max_train = 200;
    o.max_test = 50;
    build_fashion_mnist(o);
    return DatasetFile::open(o.out);
  };
  auto a = build(7, "fm_a.h5"), b = build(7, "fm_b.h5"), c = build(8, "fm_c.h5");
  EXPECT_EQ(a->info().splits.at("train").size, 200);
  EXPECT_EQ(a->info().splits.at("test").image.height, 28);
  std::vector<int> per_class(13, 0);
  for (int32_t k : a->concepts("train")) ++per_class[static_cast<size_t>(k)];
  for (int k = 0; k < 10; ++k) EXPECT_EQ(per_class[k], 20) << k;
  const auto& names = a->info().concept_names;
  const auto& parent = a->info().concept_parent;
  ASSERT_EQ(names.size(), 13u);
  auto parent_of = [&](const std::string& n) {
    const auto i = std::find(names.begin(), names.end(), n) - names.begin();
    return parent[i] < 0 ? std::string("-") : names[parent[i]];
  };
  EXPECT_EQ(parent_of("sandal"), "footwear");
  EXPECT_EQ(parent_of("ankle boot"), "footwear");
  EXPECT_EQ(parent_of("coat"), "clothing");
  EXPECT_EQ(parent_of("bag"), "accessory");
  EXPECT_EQ(parent_of("footwear"), "-");
  Rows ra = a->read_range("train", 0, 200), rb = b->read_range("train", 0, 200), rc = c->read_range("train", 0, 200);
  EXPECT_TRUE(ra.images.equal(rb.images));
  EXPECT_EQ(ra.captions, rb.captions);
  EXPECT_NE(ra.captions, rc.captions) << "another seed gives other captions";
  // Specific and general phrasings both occur, and every caption names its class or parent.
  int general = 0;
  for (size_t i = 0; i < ra.captions.size(); ++i) {
    const std::string& cap = ra.captions[i];
    const std::string leaf = names[static_cast<size_t>(ra.concepts[i])];
    const std::string par = parent_of(leaf);
    const bool names_leaf = cap.find(leaf) != std::string::npos;
    EXPECT_TRUE(names_leaf || cap.find(par) != std::string::npos) << cap;
    general += names_leaf ? 0 : 1;
  }
  EXPECT_GT(general, 10);
  EXPECT_LT(general, 100);
  for (const char* f : {"fm_a.h5", "fm_b.h5", "fm_c.h5"}) std::remove(temp_path(f).c_str());
}

// No training caption is a zero-shot prompt: every default template filled with every concept
// name (leaves and parents) differs from every caption phrasing of every class.
TEST(FashionMnist, CaptionsAreDisjointFromTheZeroShotPrompts) {
  const std::vector<std::string> templates = config::EvalConfig{}.templates;
  ASSERT_FALSE(templates.empty());
  std::set<std::string> prompts;
  for (const auto& name : fashion_mnist_concepts().names) {
    for (const auto& t : templates) {
      const auto at = t.find("{}");
      prompts.insert(t.substr(0, at) + name + t.substr(at + 2));
    }
  }
  for (int32_t label = 0; label < 10; ++label) {
    for (uint64_t k = 0; k < 8; ++k) {
      const std::string cap = fashion_mnist_caption(label, k);
      EXPECT_EQ(prompts.count(cap), 0u) << "caption equals a prompt: " << cap;
    }
  }
}

// The same for `hac data import --layout imagefolder`'s default caption templates: as templates
// (same text around {}) they differ from every default prompt template, so no class name can make
// a caption equal a prompt.
TEST(ImportTemplates, DefaultsAreNotZeroShotPrompts) {
  const std::vector<std::string> prompts = config::EvalConfig{}.templates;
  const std::vector<std::string> captions = ImportOptions{}.templates;
  ASSERT_FALSE(captions.empty());
  for (const auto& c : captions) {
    ASSERT_NE(c.find("{}"), std::string::npos) << c;
    for (const auto& p : prompts) {
      const std::string cp = c.substr(0, c.find("{}")), cs = c.substr(c.find("{}") + 2);
      const std::string pp = p.substr(0, p.find("{}")), ps = p.substr(p.find("{}") + 2);
      // Equal for some name only if one prefix/suffix pair can be extended into the other.
      const bool could_meet = (cp.rfind(pp, 0) == 0 || pp.rfind(cp, 0) == 0) &&
                              (cs.size() >= ps.size() ? cs.compare(cs.size() - ps.size(), ps.size(), ps) == 0
                                                      : ps.compare(ps.size() - cs.size(), cs.size(), cs) == 0);
      if (p == "{}") continue;  // the bare name: a caption is never a bare class name (it has words around {})
      EXPECT_FALSE(could_meet) << "caption template '" << c << "' can equal prompt '" << p << "'";
    }
  }
}

TEST(FashionMnist, MissingSourceIsNamed) {
  FashionMnistOptions o;
  o.out = temp_path("fm_missing.h5");
  o.source_dir = "/no/such/dir";
  try {
    build_fashion_mnist(o);
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/dir/train-images-idx3-ubyte.gz"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(exists(o.out));
  EXPECT_FALSE(exists(o.out + ".partial"));
}

}  // namespace
}  // namespace runner::data
