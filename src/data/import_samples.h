// Internal to src/data: the sources of `hac data import` (import_samples.cpp): samples of
// folders, tars and ImageFolder trees, each sample's metadata, the concept table, option checks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "data/image_import.h"

namespace runner::data::import_samples {

struct Member {
  std::string ext;
  std::string data;
  std::string problem;  // non-empty: present but not readable (too large)
};

struct SampleFiles {
  std::string key, where;  // where = "<source>:<key>", for messages
  std::vector<Member> members;
};

using SampleFn = std::function<void(SampleFiles&&)>;

enum class Verdict { kOk, kNoImage, kNoCaption, kBadMetadata, kCorruptImage };

struct SampleMeta {
  Verdict verdict = Verdict::kOk;
  std::string why;
  int image = -1;  // index into members
  std::string caption, concept_name;
  bool has_concept = false;
};

struct ConceptTable {
  std::vector<std::string> names;
  std::vector<int32_t> parent;  // empty without a parents file
  std::map<std::string, int32_t> index;
};

// Calls fn for every sample of `source` (a folder or a tar, plain or compressed) as the options'
// layout sees it (ImageFolder: class and caption members added). with_images = false skips the
// images' bytes (the metadata pass). IoError naming the source when it is missing or malformed.
void for_each_import_sample(const std::string& source, bool with_images, const ImportOptions& o,
                            const std::map<std::string, std::string>& display, const SampleFn& fn);

// A class folder name as words: '_' becomes a space ("golden_retriever" -> "golden retriever").
std::string folder_display_name(const std::string& folder);
// "concept<TAB>display name" lines of `path` ("" = none); ConfigError naming the line.
std::map<std::string, std::string> read_display_names(const std::string& path);

// The sample's image, caption and concept, or the reason it is skipped.
SampleMeta read_meta(const SampleFiles& s, const std::string& concept_field);

// The concept table: the sorted names used, plus their ancestors from parents_file.
ConceptTable make_concepts(const std::set<std::string>& used, const std::string& parents_file);

// ConfigError "hac data import: ..." for an option out of range.
void check_options(const ImportOptions& o);

}  // namespace runner::data::import_samples
