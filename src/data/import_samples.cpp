// `hac data import`'s sources (import_samples.h): folders and tars of samples, ImageFolder trees,
// each sample's metadata, the concept table and the options' checks.
#include "data/import_samples.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/hash.h"
#include "data/dataset.h"

namespace runner::data::import_samples {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxTextBytes = 1 << 20;     // captions and metadata; larger is not a caption
constexpr size_t kMaxImageBytes = 256 << 20;
const std::set<std::string> kTextExts = {"txt", "json", "cls", "concept"};
const std::vector<std::string> kImageExts = {"jpg", "jpeg", "png"};  // in order of preference

bool is_image_ext(const std::string& ext) {
  return std::find(kImageExts.begin(), kImageExts.end(), ext) != kImageExts.end();
}

// ----------------------------------------------------------------------------- samples

// WebDataset's cut: the key ends at the first '.' of the file name; the extension is the rest.
void split_key(const std::string& name, std::string& key, std::string& ext) {
  const size_t base = name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1;
  const size_t dot = name.find('.', base);
  key = name.substr(0, dot);
  ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
}

// Names starting with '.' (at any level) are tool litter such as macOS "._x.jpg".
bool hidden(const std::string& name) {
  return !name.empty() && (name[0] == '.' || name.find("/.") != std::string::npos);
}

bool wanted(const std::string& ext, bool with_images) {
  return kTextExts.count(ext) > 0 || (with_images && is_image_ext(ext));
}

size_t member_cap(const std::string& ext) { return is_image_ext(ext) ? kMaxImageBytes : kMaxTextBytes; }

void for_each_tar_sample(const std::string& source, bool with_images, const SampleFn& fn) {
  SampleFiles cur;
  std::string key, ext;
  for_each_tar_member(source, [&](const std::string& name, uint64_t size, const std::function<std::string()>& read) {
    if (hidden(name)) return;
    split_key(name, key, ext);
    if (!cur.members.empty() && key != cur.key) fn(std::move(cur));
    if (cur.members.empty() || key != cur.key) {
      cur = SampleFiles{};
      cur.key = key;
      cur.where = source + ":" + key;
    }
    Member m;
    m.ext = ext;
    if (wanted(ext, with_images)) {
      if (size > member_cap(ext)) {
        m.problem = fmt::format("{} is {} bytes, over the limit of {}", name, size, member_cap(ext));
      } else {
        m.data = read();
      }
    }
    cur.members.push_back(std::move(m));
  });
  if (!cur.members.empty()) fn(std::move(cur));
}

// ----------------------------------------------------------------------------- folders

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} (did the source change during the import?)", path));
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw IoError(fmt::format("read error on {}", path));
  return out;
}

void for_each_folder_sample(const std::string& source, bool with_images, const SampleFn& fn) {
  struct Entry {
    std::string key, ext, rel;
  };
  std::vector<Entry> entries;
  try {
    const fs::path root(source);
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied);
         it != fs::recursive_directory_iterator(); ++it) {
      const std::string rel = it->path().lexically_relative(root).generic_string();
      if (hidden(rel)) {
        if (it->is_directory()) it.disable_recursion_pending();
        continue;
      }
      if (!it->is_regular_file()) continue;
      Entry e;
      e.rel = rel;
      split_key(rel, e.key, e.ext);
      entries.push_back(std::move(e));
    }
  } catch (const fs::filesystem_error& e) {
    throw IoError(fmt::format("cannot list {}: {}", source, e.what()));
  }
  // Key order groups a sample's files and makes the row order independent of the file system.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return std::tie(a.key, a.ext) < std::tie(b.key, b.ext); });
  for (size_t i = 0; i < entries.size();) {
    SampleFiles s;
    s.key = entries[i].key;
    s.where = source + ":" + s.key;
    for (; i < entries.size() && entries[i].key == s.key; ++i) {
      Member m;
      m.ext = entries[i].ext;
      if (wanted(m.ext, with_images)) {
        const std::string path = source + "/" + entries[i].rel;
        std::error_code ec;
        const auto size = fs::file_size(path, ec);
        if (ec) throw IoError(fmt::format("cannot read {}: {} (did the source change during the import?)", path,
                                          ec.message()));
        if (size > member_cap(m.ext)) {
          m.problem = fmt::format("{} is {} bytes, over the limit of {}", path, size, member_cap(m.ext));
        } else {
          m.data = read_whole_file(path);
        }
      }
      s.members.push_back(std::move(m));
    }
    fn(std::move(s));
  }
}

void for_each_sample(const std::string& source, bool with_images, const SampleFn& fn) {
  std::error_code ec;
  const auto status = fs::status(source, ec);
  if (ec || !fs::exists(status)) throw IoError(fmt::format("source {} does not exist", source));
  if (fs::is_directory(status)) return for_each_folder_sample(source, with_images, fn);
  if (!fs::is_regular_file(status)) throw IoError(fmt::format("source {} is neither a folder nor a file", source));
  for_each_tar_sample(source, with_images, fn);
}

}  // namespace

// ----------------------------------------------------------------------------- imagefolder

// A class folder name as words: '_' becomes a space ("golden_retriever" -> "golden retriever").
std::string folder_display_name(const std::string& folder) {
  std::string out = folder;
  std::replace(out.begin(), out.end(), '_', ' ');
  return out;
}

// "concept<TAB>display name" lines; blank lines and '#' comments skipped.
std::map<std::string, std::string> read_display_names(const std::string& path) {
  std::map<std::string, std::string> out;
  if (path.empty()) return out;
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("cannot open the display names file {}: {}", path, std::strerror(errno)));
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t tab = line.find('\t');
    if (tab == 0 || tab == std::string::npos || tab + 1 == line.size()) {
      throw ConfigError(fmt::format("{}:{}: expected 'concept<TAB>display name', got '{}'", path, no, line));
    }
    out[line.substr(0, tab)] = line.substr(tab + 1);
  }
  return out;
}

namespace {

// The class, and unless the sample brings one the caption, of an ImageFolder sample, as the members
// a WebDataset sample would have (<key>.cls, <key>.txt). Files directly in the source have no class.
void as_imagefolder_sample(SampleFiles& s, const ImportOptions& o, const std::map<std::string, std::string>& display) {
  const size_t slash = s.key.find('/');
  if (slash == std::string::npos) return;
  const std::string cls = s.key.substr(0, slash);
  auto has = [&](const char* ext) {
    return std::any_of(s.members.begin(), s.members.end(), [&](const Member& m) { return m.ext == ext; });
  };
  if (!has("cls") && !has("concept")) s.members.push_back(Member{"cls", cls, ""});
  if (!has("txt") && !has("json")) {
    const auto it = display.find(cls);
    const std::string name = it != display.end() ? it->second : folder_display_name(cls);
    const std::string& t = o.templates[core::fnv1a64(s.key) % o.templates.size()];
    const size_t at = t.find("{}");
    s.members.push_back(Member{"txt", t.substr(0, at) + name + t.substr(at + 2), ""});
  }
}

}  // namespace

// for_each_sample, each sample seen through the options' layout.
void for_each_import_sample(const std::string& source, bool with_images, const ImportOptions& o,
                            const std::map<std::string, std::string>& display, const SampleFn& fn) {
  if (o.layout != "imagefolder") return for_each_sample(source, with_images, fn);
  for_each_sample(source, with_images, [&](SampleFiles&& s) {
    as_imagefolder_sample(s, o, display);
    fn(std::move(s));
  });
}

// ----------------------------------------------------------------------------- metadata

namespace {

std::string trim(const std::string& s) {
  size_t a = s.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;  // a UTF-8 byte-order mark
  size_t b = s.size();
  auto space = [](char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v'; };
  while (a < b && space(s[a])) ++a;
  while (b > a && space(s[b - 1])) --b;
  return s.substr(a, b - a);
}

// Strict UTF-8 (no overlong forms, surrogates or NULs: HDF5 strings end at the first NUL).
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    int extra = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) extra = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) extra = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) extra = 3, cp = c & 0x07;
    else return false;
    if (i + static_cast<size_t>(extra) >= n) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += static_cast<size_t>(extra) + 1;
  }
  return true;
}

}  // namespace

SampleMeta read_meta(const SampleFiles& s, const std::string& concept_field) {
  SampleMeta m;
  auto find = [&](const std::string& ext) {
    for (size_t i = 0; i < s.members.size(); ++i) {
      if (s.members[i].ext == ext) return static_cast<int>(i);
    }
    return -1;
  };
  for (const auto& ext : kImageExts) {
    if (m.image < 0) m.image = find(ext);
  }
  auto bad = [&](Verdict v, std::string why) {
    m.verdict = v;
    m.why = std::move(why);
    return m;
  };
  if (m.image < 0) return bad(Verdict::kNoImage, "no .jpg, .jpeg or .png");
  for (const Member& mem : s.members) {
    if (!mem.problem.empty() && !is_image_ext(mem.ext)) return bad(Verdict::kBadMetadata, mem.problem);
  }
  nlohmann::json meta;
  if (const int j = find("json"); j >= 0) {
    meta = nlohmann::json::parse(s.members[j].data, nullptr, /*allow_exceptions=*/false);
    if (meta.is_discarded() || !meta.is_object()) return bad(Verdict::kBadMetadata, ".json is not a JSON object");
  }
  if (const int t = find("txt"); t >= 0) m.caption = trim(s.members[t].data);
  if (m.caption.empty() && meta.contains("caption")) {
    if (!meta["caption"].is_string()) return bad(Verdict::kBadMetadata, ".json field \"caption\" is not a string");
    m.caption = trim(meta["caption"].get<std::string>());
  }
  if (m.caption.empty()) return bad(Verdict::kNoCaption, "no caption (.txt, or \"caption\" in .json)");
  for (const char* ext : {"concept", "cls"}) {
    if (const int c = find(ext); c >= 0 && !m.has_concept) {
      m.concept_name = trim(s.members[c].data);
      m.has_concept = !m.concept_name.empty();
    }
  }
  if (!m.has_concept && !concept_field.empty() && meta.contains(concept_field)) {
    const auto& v = meta[concept_field];
    if (v.is_string()) {
      m.concept_name = trim(v.get<std::string>());
    } else if (v.is_number_integer()) {
      m.concept_name = v.dump();
    } else if (!v.is_null()) {
      return bad(Verdict::kBadMetadata, fmt::format(".json field \"{}\" is neither a string nor an integer",
                                                    concept_field));
    }
    m.has_concept = !m.concept_name.empty();
  }
  if (!valid_utf8(m.caption) || (m.has_concept && !valid_utf8(m.concept_name))) {
    return bad(Verdict::kBadMetadata, "caption or concept is not valid UTF-8");
  }
  return m;
}

// ----------------------------------------------------------------------------- concepts

namespace {

// child -> parent from "child<TAB>parent" lines; blank lines and '#' comments are skipped.
std::map<std::string, std::string> read_parents(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(fmt::format("cannot open the parents file {}: {}", path, std::strerror(errno)));
  std::map<std::string, std::string> parent;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (trim(line).empty() || trim(line)[0] == '#') continue;
    const size_t tab = line.find('\t');
    const std::string child = tab == std::string::npos ? "" : trim(line.substr(0, tab));
    const std::string par = tab == std::string::npos ? "" : trim(line.substr(tab + 1));
    if (child.empty() || par.empty() || par.find('\t') != std::string::npos) {
      throw ConfigError(fmt::format("{}:{}: expected 'child<TAB>parent', got '{}'", path, no, line));
    }
    if (child == par) throw ConfigError(fmt::format("{}:{}: '{}' is its own parent", path, no, child));
    auto [it, fresh] = parent.emplace(child, par);
    if (!fresh && it->second != par) {
      throw ConfigError(fmt::format("{}:{}: '{}' has two parents, '{}' and '{}'", path, no, child, it->second, par));
    }
  }
  return parent;
}

// The concepts in use plus their ancestors, sorted; parents resolved to indices.
}  // namespace

ConceptTable make_concepts(const std::set<std::string>& used, const std::string& parents_file) {
  ConceptTable t;
  std::set<std::string> names = used;
  std::map<std::string, std::string> parent;
  if (!parents_file.empty()) {
    parent = read_parents(parents_file);
    for (const std::string& c : used) {
      std::string at = c;
      for (size_t steps = 0; parent.count(at); ++steps) {
        if (steps > parent.size()) {
          throw ConfigError(fmt::format("{}: the parents of '{}' form a cycle", parents_file, c));
        }
        at = parent.at(at);
        names.insert(at);
      }
    }
  }
  t.names.assign(names.begin(), names.end());
  for (size_t i = 0; i < t.names.size(); ++i) t.index[t.names[i]] = static_cast<int32_t>(i);
  if (!parents_file.empty()) {
    for (const std::string& n : t.names) t.parent.push_back(parent.count(n) ? t.index.at(parent.at(n)) : -1);
  }
  return t;
}

void check_options(const ImportOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError("hac data import: " + what);
  };
  need(!o.sources.empty(), "give at least one SOURCE (a folder or a .tar, plain or compressed)");
  need(!o.out.empty(), "--out FILE is required");
  need(o.size >= 1 && o.size <= 4096, fmt::format("--size must be in [1, 4096], got {}", o.size));
  need(o.channels == 1 || o.channels == 3, fmt::format("--channels must be 1 or 3, got {}", o.channels));
  need(o.test_fraction >= 0.0 && o.test_fraction <= 1.0,
       fmt::format("--test-fraction must be in [0, 1], got {}", o.test_fraction));
  need(o.layout == "samples" || o.layout == "imagefolder",
       fmt::format("--layout must be samples or imagefolder, got '{}'", o.layout));
  need(!o.templates.empty(), "--template: give at least one caption template");
  for (const auto& t : o.templates) need(t.find("{}") != std::string::npos, fmt::format("--template '{}' has no {{}}", t));
  need(o.threads >= 0 && o.threads <= 1024, fmt::format("--threads must be in [0, 1024], got {}", o.threads));
  need(o.batch_rows >= 1, fmt::format("batch rows must be positive, got {}", o.batch_rows));
  need(o.storage == kStoragePixels || o.storage == kStorageJpeg,
       fmt::format("--storage must be pixels or jpeg, got '{}'", o.storage));
  need(o.jpeg_max_side >= 0 && o.jpeg_max_side <= 16384,
       fmt::format("--jpeg-max-side must be in [0, 16384], got {}", o.jpeg_max_side));
  need(o.jpeg_quality >= 1 && o.jpeg_quality <= 100,
       fmt::format("--jpeg-quality must be in [1, 100], got {}", o.jpeg_quality));
}

}  // namespace runner::data::import_samples
