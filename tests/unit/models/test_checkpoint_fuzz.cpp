// Fuzz tests of the torch.save reader: truncations, byte flips, mutated pickles.
// Every case must either load or throw IoError naming the file: no other exception, crash, hang
// or huge allocation.
#include <c10/core/CPUAllocator.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <typeinfo>
#include <unordered_map>

#include "checkpoint_test_util.h"
#include "core/error.h"

namespace runner::models::test {
namespace {

// HAC_FUZZ_SCALE multiplies the case counts for longer local runs (default 1).
double fuzz_scale() {
  const char* s = std::getenv("HAC_FUZZ_SCALE");
  return s == nullptr ? 1.0 : std::max(0.01, std::atof(s));
}

int scaled(int n) { return std::max(1, static_cast<int>(n * fuzz_scale())); }

struct Source {
  std::string label;
  std::string bytes;  // the whole file
  std::vector<std::pair<std::string, std::string>> records;
};

// Three layouts: the released one (OrderedDict, BUILD, int keys; written by Python), a plain
// golden dict (Python), and a LibTorch-written tree (type tags, shared storages, views).
std::vector<Source> sources(const std::string& dir) {
  std::vector<Source> out;
  const std::string zoo = dir + "/zoo.pt";
  save_torch_file(zoo, make_zoo());
  for (const auto& [label, path] : std::vector<std::pair<std::string, std::string>>{
           {"released-layout", tiny_released_path()},
           {"golden-dict", std::string(RUNNER_GOLDEN_DIR) + "/meru_losses.pt"},
           {"libtorch-zoo", zoo}}) {
    out.push_back({label, read_bytes(path), read_records(path)});
  }
  return out;
}

struct Tally {
  int loaded = 0;
  int rejected = 0;
};

void report(const std::string& what, const Source& src, const Tally& t) {
  std::printf("[fuzz] %-28s %-16s %6d cases: %6d rejected (IoError), %6d loaded\n", what.c_str(),
              src.label.c_str(), t.loaded + t.rejected, t.rejected, t.loaded);
  testing::Test::RecordProperty(what + "/" + src.label, t.loaded + t.rejected);
}

// Loads `bytes` as a file and uses the result the way callers do.
void load_case(const std::string& path, const std::string& bytes, const std::string& what,
               Tally& t) {
  write_bytes(path, bytes);
  try {
    const c10::IValue v = load_torch_file(path);
    for (const auto& entry : flatten(v)) (void)entry.second.sum();  // touches every element
    try {
      (void)state_dict_of(v, path);
    } catch (const IoError&) {
    }
    (void)describe_checkpoint(path);
    ++t.loaded;
  } catch (const IoError& e) {
    if (std::string(e.what()).find(path) == std::string::npos)
      ADD_FAILURE() << what << ": no path in: " << e.what();
    ++t.rejected;
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": " << typeid(e).name() << ": " << e.what();
  }
}

TEST(CheckpointFuzz, Truncation) {
  const std::string dir = make_temp_dir();
  for (const Source& src : sources(dir)) {
    const size_t n = src.bytes.size();
    std::vector<size_t> cuts;
    // Every cut in the first and last kilobyte (headers, central directory, end record), a
    // regular comb in between.
    for (size_t c = 0; c < n; ++c) {
      if (c < 1024 || c + 1024 >= n ||
          c % std::max<size_t>(1, n / static_cast<size_t>(scaled(400))) == 0)
        cuts.push_back(c);
    }
    Tally t;
    for (size_t c : cuts)
      load_case(dir + "/cut.pt", src.bytes.substr(0, c), "cut at " + std::to_string(c), t);
    EXPECT_EQ(t.loaded, 0) << "a truncated archive loaded";
    report("truncation", src, t);
  }
  std::filesystem::remove_all(dir);
}

TEST(CheckpointFuzz, ByteFlipsAnywhere) {
  const std::string dir = make_temp_dir();
  std::mt19937_64 rng(20240601);
  for (const Source& src : sources(dir)) {
    const size_t n = src.bytes.size();
    Tally t;
    for (int k = 0; k < scaled(600); ++k) {
      std::string b = src.bytes;
      const int flips = 1 + static_cast<int>(rng() % 4);
      std::string what = "flips at";
      for (int f = 0; f < flips; ++f) {
        // Half the flips land in the last 2 KiB: the central directory and end records.
        const size_t pos = (rng() % 2 == 0 && n > 2048) ? n - 1 - rng() % 2048 : rng() % n;
        b[pos] = static_cast<char>(b[pos] ^ static_cast<char>(1 + rng() % 255));
        what += " " + std::to_string(pos);
      }
      load_case(dir + "/flip.pt", b, what, t);
    }
    report("byte flips (whole file)", src, t);
  }
  std::filesystem::remove_all(dir);
}

// One random edit of a pickle: flip, overwrite with an opcode byte or a boundary value,
// insert, delete, truncate or duplicate a span.
std::string mutate(const std::string& pkl, std::mt19937_64& rng) {
  static const std::string kInteresting =
      std::string("\x00\x01\x7f\x80\xff", 5) + "().}]tuseaqhjrQRbcXKMJG\x85\x86\x87\x88\x89\x8a";
  std::string b = pkl;
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits && !b.empty(); ++e) {
    const size_t pos = rng() % b.size();
    switch (rng() % 6) {
      case 0: b[pos] = static_cast<char>(b[pos] ^ static_cast<char>(1 + rng() % 255)); break;
      case 1: b[pos] = kInteresting[rng() % kInteresting.size()]; break;
      case 2:
        b.insert(b.begin() + static_cast<std::ptrdiff_t>(pos),
                 kInteresting[rng() % kInteresting.size()]);
        break;
      case 3: b.erase(pos, 1 + rng() % 4); break;
      case 4: b.resize(pos); break;
      default: {
        const size_t len = 1 + rng() % std::min<size_t>(64, b.size() - pos);
        b.insert(rng() % b.size(), b.substr(pos, len));
      }
    }
  }
  return b;
}

TEST(CheckpointFuzz, PickleMutationsRezipped) {
  const std::string dir = make_temp_dir();
  std::mt19937_64 rng(777);
  for (const Source& src : sources(dir)) {
    Tally t;
    for (int k = 0; k < scaled(1500); ++k) {
      auto records = src.records;
      for (auto& [name, bytes] : records) {
        if (name == "data.pkl") bytes = mutate(bytes, rng);
      }
      load_case(dir + "/mut.pt", write_records(records), "mutated pickle #" + std::to_string(k), t);
    }
    report("pickle mutations (re-zipped)", src, t);
  }
  std::filesystem::remove_all(dir);
}

// Many more mutations without the zip round trip: the interpreter alone, storages served from
// the original records with the same size check load_torch_file makes.
TEST(CheckpointFuzz, PickleMutationsInMemory) {
  const std::string dir = make_temp_dir();
  std::mt19937_64 rng(4242);
  for (const Source& src : sources(dir)) {
    std::unordered_map<std::string, std::string> by_name(src.records.begin(), src.records.end());
    const detail::StorageLoader loader = [&](const std::string& key, uint64_t nbytes) {
      auto it = by_name.find("data/" + key);
      if (it == by_name.end() || it->second.size() != nbytes)
        throw IoError("mem.pt: storage " + key + " missing or resized");
      c10::Storage s(c10::Storage::use_byte_size_t(), it->second.size(), c10::GetCPUAllocator(),
                     false);
      if (!it->second.empty()) std::memcpy(s.data(), it->second.data(), it->second.size());
      return s;
    };
    const std::string pkl = by_name.at("data.pkl");
    Tally t;
    for (int k = 0; k < scaled(20000); ++k) {
      const std::string b = mutate(pkl, rng);
      try {
        const c10::IValue v = detail::unpickle_torch_save(b.data(), b.size(), loader, "mem.pt");
        for (const auto& entry : flatten(v)) (void)entry.second.sum();
        ++t.loaded;
      } catch (const IoError& e) {
        if (std::string(e.what()).find("mem.pt") == std::string::npos)
          ADD_FAILURE() << "no path in: " << e.what();
        ++t.rejected;
      } catch (const std::exception& e) {
        ADD_FAILURE() << "case " << k << ": " << typeid(e).name() << ": " << e.what();
      }
    }
    report("pickle mutations (in memory)", src, t);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace runner::models::test
