// `hac data import`: JPEG/PNG decoding, resize and crop, folders and tars (GNU, pax), metadata,
// concepts and parents, the seeded split, skip accounting and the no-partial-file guarantee.
// Every fixture is encoded here with libjpeg/libpng, so expected pixels are known exactly.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "core/error.h"
#include "core/hash.h"
#include "data/dataset.h"
#include "data/image_import.h"
#include "import_fixtures.h"

namespace runner::data {
namespace {

using namespace import_fixtures;

// ----------------------------------------------------------------------------- import

constexpr int kSide = 16;
const std::string kLongKey = "long_" + std::string(120, 'k');  // needs GNU 'L' / pax names in a tar

// A source folder: valid samples of every kind plus each way a sample is skipped.
struct Fixture {
  TempDir dir;
  std::string src = dir / "src";
  std::map<std::string, Image> want;               // key -> expected RGB for exact checks
  std::map<std::string, std::string> caption;      // key -> caption of the valid samples
  std::map<std::string, std::string> concept_of;   // key -> concept ("" = none)
  std::vector<std::string> files;                  // relative paths

  using Files = std::vector<std::pair<std::string, std::string>>;  // extension, content

  void add(const std::string& key, const Files& content) {
    for (const auto& [ext, bytes] : content) {
      write_file(src + "/" + key + "." + ext, bytes);
      files.push_back(key + "." + ext);
    }
  }

  Fixture() {
    const auto pngs = png_cases(kSide, 11);
    std::map<std::string, const PngCase*> by;
    for (const auto& pc : pngs) by[pc.name] = &pc;
    // A valid sample: a PNG of one kind (none: a JPEG is among the files), its other files, and
    // the caption and concept the import must find.
    auto valid = [&](const std::string& key, const std::string& kind, Files meta, const std::string& cap,
                     const std::string& concept) {
      if (!kind.empty()) {
        meta.emplace_back("png", by.at(kind)->bytes);
        want[key] = by.at(kind)->rgb;
      }
      add(key, meta);
      caption[key] = cap;
      concept_of[key] = concept;
    };
    valid("a_rgb", "rgb", {{"txt", "caption a\n"}, {"json", R"({"subreddit": "cats", "score": 3})"}}, "caption a",
          "cats");
    valid("b_grey", "grey", {{"txt", "  caption b  "}}, "caption b", "");
    valid("c_pal", "palette", {{"txt", "caption c \xc3\xa9t\xc3\xa9"}, {"cls", "birds\n"}},
          "caption c \xc3\xa9t\xc3\xa9", "birds");
    valid("d_rgba", "rgba", {{"txt", "caption d"}, {"json", R"({"subreddit": "dogs", "caption": "not this one"})"}},
          "caption d", "dogs");
    valid("e_deep", "deep", {{"txt", "caption e"}, {"concept", "cats"}}, "caption e", "cats");
    valid("f_jpg", "", {{"jpg", encode_jpeg(gradient(32, 48, 3, 4.0, 6.0))}, {"txt", "caption f"}}, "caption f", "");
    valid("g_json", "", {{"jpeg", encode_jpeg(gradient(kSide, kSide, 1, 12.0, 0.0))},
                         {"json", R"({"caption": "caption g", "subreddit": "dogs"})"}}, "caption g", "dogs");
    valid("h_interlaced", "interlaced", {{"txt", "caption h"}}, "caption h", "");
    valid("sub/i_nested", "grey_alpha", {{"txt", "caption i"}, {"json", R"({"subreddit": 42})"}}, "caption i", "42");
    valid(kLongKey, "rgb", {{"txt", "caption long"}, {"cls", "cats"}}, "caption long", "cats");
    // Skipped: 3 corrupt images, 2 without caption, 1 without image, 1 with bad metadata.
    const std::string jpg = encode_jpeg(random_image(32, 32, 3, 4)), png = pngs[0].bytes;
    add("x_corrupt", {{"jpg", jpg.substr(0, jpg.size() / 2)}, {"txt", "caption x"}, {"json", R"({"subreddit": "zebras"})"}});
    add("y_garbage", {{"jpg", std::string(500, '\x33')}, {"txt", "caption y"}});
    add("z_trunc", {{"png", png.substr(0, png.size() * 2 / 3)}, {"txt", "caption z"}});
    add("m_nocap", {{"png", png}, {"json", R"({"subreddit": "cats"})"}});
    add("p_emptycap", {{"png", png}, {"txt", " \n"}});
    add("n_textonly", {{"txt", "caption n"}});
    add("o_badjson", {{"png", png}, {"txt", "caption o"}, {"json", "{not json"}});
    write_file(src + "/.DS_Store", "junk");  // hidden: ignored entirely
  }

  // A tar of the same files made by the system's tar, members in `order`.
  std::string tar(const std::string& format, bool reversed) const {
    std::vector<std::string> order = files;
    std::sort(order.begin(), order.end());
    if (reversed) std::reverse(order.begin(), order.end());
    // Keep each sample's members adjacent, as WebDataset requires.
    std::stable_sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
      auto key = [](const std::string& f) { return f.substr(0, f.find('.', f.rfind('/') + 1)); };
      return reversed ? key(a) > key(b) : key(a) < key(b);
    });
    const std::string list = dir / ("list_" + format), out = dir / (format + (reversed ? "_rev" : "") + ".tar");
    std::ofstream l(list);
    for (const auto& f : order) l << "./" << f << "\n";
    l.close();
    const std::string cmd = "tar --format=" + format + " -cf '" + out + "' -C '" + src + "' -T '" + list + "'";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    return out;
  }
};

struct Row {
  std::string split, concept_name;
  std::vector<uint8_t> image;
};

// caption -> row, for every row of the file.
std::map<std::string, Row> read_rows(const std::string& path) {
  auto file = DatasetFile::open(path);
  std::map<std::string, Row> rows;
  for (const std::string& split : split_names()) {
    const int64_t n = file->info().splits.at(split).size;
    const Rows r = file->read_range(split, 0, n);
    for (int64_t i = 0; i < n; ++i) {
      const int32_t c = r.concepts[static_cast<size_t>(i)];
      const at::Tensor img = r.images[i].contiguous();
      Row row{split, c < 0 ? "" : file->info().concept_names.at(static_cast<size_t>(c)),
              std::vector<uint8_t>(img.data_ptr<uint8_t>(), img.data_ptr<uint8_t>() + img.numel())};
      EXPECT_TRUE(rows.emplace(r.captions[static_cast<size_t>(i)], std::move(row)).second) << "duplicate caption";
    }
  }
  return rows;
}

ImportOptions options(const std::vector<std::string>& sources, const std::string& out) {
  ImportOptions o;
  o.sources = sources;
  o.out = out;
  o.size = kSide;
  o.test_fraction = 0.4;
  o.seed = 7;
  o.batch_rows = 3;  // several batches and partial flushes
  return o;
}

TEST(Import, FolderRowsCaptionsConceptsAndPixels) {
  Fixture f;
  const std::string out = f.dir / "out.h5";
  const ImportReport r = import_images(options({f.src}, out));
  EXPECT_EQ(r.train + r.test, 10);
  EXPECT_EQ(r.corrupt_image, 3);
  EXPECT_EQ(r.no_caption, 2);
  EXPECT_EQ(r.no_image, 1);
  EXPECT_EQ(r.bad_metadata, 1);
  EXPECT_EQ(r.first_problems.size(), 7u);
  // The concept table is fixed before images are decoded, so "zebras", whose only sample has a
  // corrupt image, is listed without rows (and reported).
  EXPECT_EQ(r.concept_names, (std::vector<std::string>{"42", "birds", "cats", "dogs", "zebras"}));
  EXPECT_EQ(r.unused_concepts, 1);
  EXPECT_FALSE(exists(out + ".partial"));

  auto file = DatasetFile::open(out);
  const DatasetInfo& info = file->info();
  EXPECT_EQ(info.concept_names, r.concept_names);
  EXPECT_TRUE(info.concept_parent.empty());
  EXPECT_EQ(info.attributes.at("builder"), "hac data import");
  EXPECT_EQ(info.splits.at("train").size, r.train);
  EXPECT_EQ(info.splits.at("test").size, r.test);
  for (const auto& split : split_names()) {
    EXPECT_EQ(info.splits.at(split).image.height, kSide);
    EXPECT_EQ(info.splits.at(split).image.width, kSide);
    EXPECT_EQ(info.splits.at(split).image.channels, 3);
  }

  const auto rows = read_rows(out);
  ASSERT_EQ(rows.size(), f.caption.size());
  int64_t test = 0;
  for (const auto& [key, cap] : f.caption) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(rows.count(cap)) << cap;
    const Row& row = rows.at(cap);
    EXPECT_EQ(row.concept_name, f.concept_of.at(key));
    EXPECT_EQ(row.split, import_is_test(key, 7, 0.4) ? "test" : "train");
    test += row.split == "test";
    if (f.want.count(key)) {
      EXPECT_EQ(row.image, f.want.at(key).px);
    }
  }
  EXPECT_EQ(test, r.test);
  // 48x32 JPEG gradient (R = 4x, G = 6y) at 16: scale 2, crop 4 -> R ~ 4 (8 + 2x + 0.5), G ~ 6 (2y + 0.5).
  const auto& jpg = rows.at("caption f").image;
  for (int y = 0; y < kSide; ++y) {
    for (int x = 0; x < kSide; ++x) {
      ASSERT_NEAR(jpg[(y * kSide + x) * 3 + 0], 4.0 * (8 + 2 * x + 0.5), 6.0);
      ASSERT_NEAR(jpg[(y * kSide + x) * 3 + 1], 6.0 * (2 * y + 0.5), 6.0);
    }
  }
  const auto& grey_jpg = rows.at("caption g").image;  // grey JPEG replicated to RGB
  for (int x = 0; x < kSide; ++x) {
    EXPECT_NEAR(grey_jpg[(3 * kSide + x) * 3], 12 * x, 4.0);
    EXPECT_EQ(grey_jpg[(3 * kSide + x) * 3], grey_jpg[(3 * kSide + x) * 3 + 2]);
  }
}

// Every row of `want` in `got` (by caption) with the same split, concept and pixels, and no other.
void expect_same_rows(const std::map<std::string, Row>& got, const std::map<std::string, Row>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [cap, row] : want) {
    ASSERT_TRUE(got.count(cap)) << cap;
    EXPECT_EQ(got.at(cap).split, row.split) << cap;
    EXPECT_EQ(got.at(cap).concept_name, row.concept_name) << cap;
    EXPECT_EQ(got.at(cap).image, row.image) << cap;
  }
}

// gzip- and xz-compressed tars, read through libarchive, give the same file as the plain tar.
TEST(Import, CompressedTarsMatchThePlainTar) {
  Fixture f;
  const std::string tar = f.tar("gnu", false), plain = f.dir / "plain.h5";
  import_images(options({tar}, plain));
  const auto want = read_rows(plain);
  for (const auto& [flag, ext] : std::vector<std::pair<std::string, std::string>>{{"gzip", "gz"}, {"xz", "xz"}}) {
    SCOPED_TRACE(ext);
    const std::string packed = tar + "." + ext;
    ASSERT_EQ(std::system(("" + flag + " -c '" + tar + "' > '" + packed + "'").c_str()), 0);
    const std::string out = f.dir / ("packed_" + ext + ".h5");
    const ImportReport r = import_images(options({packed}, out));
    EXPECT_EQ(r.train + r.test, 10);
    expect_same_rows(read_rows(out), want);
  }
}

// GNU and pax tars of the same files, one in reverse order, give the same rows and split as the
// folder: the split depends on the key only.
TEST(Import, TarsMatchTheFolder) {
  Fixture f;
  const std::string folder_out = f.dir / "folder.h5";
  const ImportReport rf = import_images(options({f.src}, folder_out));
  const auto want = read_rows(folder_out);
  for (const auto& [format, reversed] : std::vector<std::pair<std::string, bool>>{{"gnu", true}, {"pax", false}}) {
    SCOPED_TRACE(format);
    const std::string tar = f.tar(format, reversed), out = f.dir / (format + ".h5");
    const ImportReport rt = import_images(options({tar}, out));
    EXPECT_EQ(rt.train, rf.train);
    EXPECT_EQ(rt.test, rf.test);
    EXPECT_EQ(rt.corrupt_image, 3);
    EXPECT_EQ(rt.no_caption, 2);
    EXPECT_EQ(rt.no_image, 1);
    EXPECT_EQ(rt.bad_metadata, 1);
    expect_same_rows(read_rows(out), want);
  }
  // Both sources at once: every sample twice (captions repeat, so count rows only).
  const std::string both = f.dir / "both.h5";
  const ImportReport rb = import_images(options({f.src, f.tar("gnu", false)}, both));
  EXPECT_EQ(rb.train, 2 * rf.train);
  EXPECT_EQ(rb.test, 2 * rf.test);
}

TEST(Import, GreyChannelsAndEmptyTestSplit) {
  Fixture f;
  const std::string out = f.dir / "grey.h5";
  ImportOptions o = options({f.src}, out);
  o.channels = 1;
  o.test_fraction = 0.0;
  const ImportReport r = import_images(o);
  EXPECT_EQ(r.test, 0);
  EXPECT_EQ(r.train, 10);
  auto file = DatasetFile::open(out);
  EXPECT_EQ(file->info().splits.at("test").size, 0);
  EXPECT_EQ(file->info().splits.at("train").image.channels, 1);
  const auto rows = read_rows(out);
  const Image& rgb = f.want.at("a_rgb");
  const auto& grey = rows.at("caption a").image;
  ASSERT_EQ(grey.size(), static_cast<size_t>(kSide * kSide));
  for (size_t i = 0; i < grey.size(); ++i) {
    ASSERT_NEAR(grey[i], 0.299 * rgb.px[3 * i] + 0.587 * rgb.px[3 * i + 1] + 0.114 * rgb.px[3 * i + 2], 0.51);
  }
}

TEST(Import, ParentsFileAddsAncestors) {
  Fixture f;
  const std::string parents = f.dir / "parents.tsv";
  write_file(parents, "# child\tparent\ncats\tanimal\ndogs\tanimal\nbirds\tanimal\nanimal\tliving\n\nunused\tthing\n");
  ImportOptions o = options({f.src}, f.dir / "tree.h5");
  o.parents_file = parents;
  import_images(o);
  const DatasetInfo info = DatasetFile::open(o.out)->info();
  EXPECT_EQ(info.concept_names,
            (std::vector<std::string>{"42", "animal", "birds", "cats", "dogs", "living", "zebras"}));
  EXPECT_EQ(info.concept_parent, (std::vector<int32_t>{-1, 5, 1, 1, 1, -1, -1}));

  for (const char* bad : {"cats\tdogs\ndogs\tcats\n", "cats animal\n", "cats\tanimal\ncats\tplant\n"}) {
    write_file(parents, bad);
    o.out = f.dir / "bad_tree.h5";
    EXPECT_THROW(import_images(o), ConfigError) << bad;
    EXPECT_FALSE(exists(o.out));
    EXPECT_FALSE(exists(o.out + ".partial"));
  }
}

TEST(Import, BadOptionsAndSourcesFailCleanly) {
  Fixture f;
  const std::string out = f.dir / "bad.h5";
  auto with = [&](auto change) {
    ImportOptions o = options({f.src}, out);
    change(o);
    return o;
  };
  EXPECT_THROW(import_images(with([](ImportOptions& o) { o.size = 0; })), ConfigError);
  EXPECT_THROW(import_images(with([](ImportOptions& o) { o.channels = 2; })), ConfigError);
  EXPECT_THROW(import_images(with([](ImportOptions& o) { o.test_fraction = 1.5; })), ConfigError);
  EXPECT_THROW(import_images(with([](ImportOptions& o) { o.sources.clear(); })), ConfigError);

  const std::string tar = f.tar("gnu", false);
  const std::string blob = read_file(tar);
  write_file(f.dir / "cut.tar", blob.substr(0, blob.size() / 3 + 100));
  write_file(f.dir / "fake.tar", std::string(2048, 'x'));
  write_file(f.dir / "packed.tar.gz", std::string("\x1f\x8b\x08\x00", 4) + std::string(100, '\0'));
  write_file(f.dir / "nothing/readme.md", "no samples here");
  // After a good source, so that the failure comes after some work; "nothing" alone.
  for (const auto& [sources, says] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{f.src, f.dir / "cut.tar"}, "truncated tar"},
           {{f.src, f.dir / "fake.tar"}, "not a tar archive"},
           {{f.src, f.dir / "packed.tar.gz"}, "not a tar archive"},
           {{f.src, f.dir / "missing"}, "does not exist"},
           {{f.dir / "nothing"}, "no sample could be imported"}}) {
    SCOPED_TRACE(sources.back());
    try {
      import_images(with([&, &srcs = sources](ImportOptions& o) { o.sources = srcs; }));
      ADD_FAILURE() << "imported";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << "wanted: " << says << "; got: " << e.what();
    }
    EXPECT_FALSE(exists(out));
    EXPECT_FALSE(exists(out + ".partial"));
  }
}

// An import that fails midway leaves neither FILE nor FILE.partial, and an older FILE untouched.
TEST(Import, InterruptedImportLeavesNoFile) {
  Fixture f;
  const std::string out = f.dir / "interrupted.h5";
  {  // an injected error after the first batch
    ImportOptions o = options({f.src}, out);
    int calls = 0;
    o.after_batch = [&](int64_t) {
      ++calls;
      EXPECT_TRUE(exists(out + ".partial"));  // rows are being written...
      EXPECT_FALSE(exists(out));              // ...but nothing looks complete
      throw IoError("injected failure");
    };
    EXPECT_THROW(import_images(o), IoError);
    EXPECT_EQ(calls, 1);
    EXPECT_FALSE(exists(out));
    EXPECT_FALSE(exists(out + ".partial"));
  }
  {  // the source disappears between batches (a file system gone, a shard deleted)
    const std::string copy = f.dir / "copy";
    fs::copy(f.src, copy, fs::copy_options::recursive);
    write_file(out, "an older file");
    ImportOptions o = options({copy}, out);
    o.after_batch = [&](int64_t) { fs::remove_all(copy); };
    try {
      import_images(o);
      ADD_FAILURE() << "imported";
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("change during the import"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(exists(out + ".partial"));
    EXPECT_EQ(read_file(out), "an older file");
  }
}

TEST(Import, ManyThreadsGiveTheSameFileAsOne) {
  Fixture f;
  ImportOptions one = options({f.src}, f.dir / "one.h5");
  one.threads = 1;
  ImportOptions many = options({f.src}, f.dir / "many.h5");
  many.threads = 8;
  many.batch_rows = 256;
  import_images(one);
  import_images(many);
  auto a = DatasetFile::open(one.out), b = DatasetFile::open(many.out);
  for (const std::string& split : split_names()) {
    const int64_t n = a->info().splits.at(split).size;
    ASSERT_EQ(b->info().splits.at(split).size, n);
    const Rows ra = a->read_range(split, 0, n), rb = b->read_range(split, 0, n);
    EXPECT_TRUE(at::equal(ra.images, rb.images));
    EXPECT_EQ(ra.captions, rb.captions);  // same order too
    EXPECT_EQ(ra.concepts, rb.concepts);
  }
}

// torchvision's ImageFolder layout: class = the first folder, captions from the templates with the
// class's display name (or the sample's own .txt), display names stored for the prompts.
TEST(Import, ImageFolderTreeClassesCaptionsAndDisplayNames) {
  TempDir dir;
  const std::string src = dir / "tree";
  write_file(src + "/golden_retriever/a.jpg", encode_jpeg(random_image(20, 24, 3, 1)));
  write_file(src + "/golden_retriever/b.JPEG", encode_jpeg(random_image(24, 20, 3, 2)));
  write_file(src + "/tabby_cat/c.jpg", encode_jpeg(random_image(16, 16, 3, 3)));
  write_file(src + "/tabby_cat/c.txt", "my own caption\n");
  write_file(src + "/tabby_cat/more/d.jpg", encode_jpeg(random_image(16, 16, 3, 4)));
  write_file(src + "/loose.jpg", encode_jpeg(random_image(16, 16, 3, 5)));  // no class folder, no caption
  ImportOptions o;
  o.sources = {src};
  o.out = dir / "folder.h5";
  o.size = kSide;
  o.test_fraction = 0.0;
  o.layout = "imagefolder";
  o.templates = {"a photo of a {}.", "an image showing a {}"};
  const ImportReport r = import_images(o);
  EXPECT_EQ(r.train, 4);
  EXPECT_EQ(r.no_caption, 1);
  EXPECT_EQ(r.concept_names, (std::vector<std::string>{"golden_retriever", "tabby_cat"}));
  auto caption_for = [&](const std::string& key, const std::string& name) {
    const std::string& t = o.templates[core::fnv1a64(key) % o.templates.size()];
    return t.substr(0, t.find("{}")) + name + t.substr(t.find("{}") + 2);
  };
  std::map<std::string, std::string> want = {{caption_for("golden_retriever/a", "golden retriever"), "golden_retriever"},
                                             {caption_for("golden_retriever/b", "golden retriever"), "golden_retriever"},
                                             {"my own caption", "tabby_cat"},
                                             {caption_for("tabby_cat/more/d", "tabby cat"), "tabby_cat"}};
  auto file = DatasetFile::open(o.out);
  EXPECT_EQ(file->info().display_names, (std::vector<std::string>{"golden retriever", "tabby cat"}));
  EXPECT_EQ(file->info().attributes.at("layout"), "imagefolder");
  const Rows rows = file->read_range("train", 0, 4);
  std::map<std::string, std::string> got;
  for (size_t i = 0; i < rows.captions.size(); ++i) {
    got.emplace(rows.captions[i], file->info().concept_names.at(static_cast<size_t>(rows.concepts[i])));
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(rows.images.sizes(), (at::IntArrayRef{4, kSide, kSide, 3}));

  // A display names file renames a class in captions and prompts; a malformed one is named.
  write_file(dir / "names.tsv", "# concept<TAB>display\ntabby_cat\tcat\n");
  o.display_names_file = dir / "names.tsv";
  o.out = dir / "named.h5";
  import_images(o);
  auto named = DatasetFile::open(o.out);
  EXPECT_EQ(named->info().display_names, (std::vector<std::string>{"golden retriever", "cat"}));
  const Rows nrows = named->read_range("train", 0, 4);
  EXPECT_NE(std::find(nrows.captions.begin(), nrows.captions.end(), caption_for("tabby_cat/more/d", "cat")),
            nrows.captions.end());
  write_file(dir / "bad.tsv", "tabby_cat cat\n");
  o.display_names_file = dir / "bad.tsv";
  o.out = dir / "bad.h5";
  try {
    import_images(o);
    ADD_FAILURE() << "a malformed display names file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.tsv:1"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(exists(o.out));
  o.display_names_file.clear();
  o.layout = "folders";
  EXPECT_THROW(import_images(o), ConfigError);
}

}  // namespace
}  // namespace runner::data
