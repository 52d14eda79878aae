// Unit tests of src/core: exit codes of the error types, build information, allocator tuning.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "core/build_info.h"
#include "core/error.h"
#include "core/allocator.h"
#include "core/sha256.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

namespace runner {
namespace {

TEST(ExitCode, UsageAndConfigErrorsExitTwoOthersOne) {
  EXPECT_EQ(core::exit_code_for(UsageError("bad flag")), 2);
  EXPECT_EQ(core::exit_code_for(ConfigError("unknown key")), 2);
  EXPECT_EQ(core::exit_code_for(IoError("missing file")), 1);
  EXPECT_EQ(core::exit_code_for(CommError("MPI_Allreduce failed")), 1);
  EXPECT_EQ(core::exit_code_for(std::runtime_error("anything else")), 1);
}

TEST(Check, ThrowsTheNamedTypeWithTheMessage) {
  try {
    RUNNER_CHECK(1 + 1 == 3, ConfigError, "key 'x': bad");
    FAIL() << "no throw";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "key 'x': bad");
  }
  EXPECT_NO_THROW(RUNNER_CHECK(true, IoError, "never"));
}

TEST(BuildInfo, CommitIsRecorded) {
  // A 12-hex-digit commit (optionally -dirty), or "unknown" when built outside git.
  std::string c = core::git_commit();
  EXPECT_TRUE(c == "unknown" || (c.size() >= 12 && c.find_first_not_of("0123456789abcdef") >= 12))
      << c;
  EXPECT_GT(std::strlen(core::runner_version()), 0u);
}

TEST(BuildInfo, DiffOnlyForADirtyBuild) {
  const std::string c = core::git_commit(), d = core::git_diff();
  const bool dirty = c.size() > 6 && c.compare(c.size() - 6, 6, "-dirty") == 0;
  if (dirty) {
    EXPECT_EQ(d.rfind("diff --git ", 0), 0u) << d.substr(0, 200);
  } else {
    EXPECT_EQ(d, "") << "a clean build carries no diff";
  }
}

// FIPS 180-4 test vectors, and the same digest for any split of the input into updates.
TEST(Sha256, KnownVectorsAndPieces) {
  EXPECT_EQ(core::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(core::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(core::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(core::sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  std::string text;
  for (int i = 0; i < 1000; ++i) text += static_cast<char>((i * 37) & 0xff);
  const std::string whole = core::sha256_hex(text);
  for (size_t piece : {1u, 3u, 55u, 56u, 63u, 64u, 65u, 999u}) {
    core::Sha256 s;
    for (size_t at = 0; at < text.size(); at += piece) s.update(text.data() + at, std::min(piece, text.size() - at));
    EXPECT_EQ(s.hex_digest(), whole) << piece;
  }
}

std::string sha256sum_of(const std::string& path) {
  const std::string cmd = "sha256sum '" + path + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "";
  char buf[128] = {0};
  const size_t got = std::fread(buf, 1, 64, p);
  pclose(p);
  return std::string(buf, got);
}

// A file's digest equals `sha256sum`'s; the cache returns it again, and a changed file is hashed anew.
TEST(Sha256, FilesMatchSha256sumAndTheCacheFollowsChanges) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hac_sha_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  ::setenv("XDG_CACHE_HOME", (dir / "cache").c_str(), 1);
  const std::string file = (dir / "data.bin").string();
  {
    std::ofstream out(file, std::ios::binary);
    for (int i = 0; i < 3 * (1 << 20) + 17; ++i) out.put(static_cast<char>((i * 131 + 7) & 0xff));  // > one read
  }
  const std::string want = sha256sum_of(file);
  ASSERT_EQ(want.size(), 64u);
  EXPECT_EQ(core::sha256_file(file, /*use_cache=*/false), want);
  EXPECT_EQ(core::sha256_file(file), want);  // computed, then remembered
  EXPECT_TRUE(fs::exists(dir / "cache" / "hac" / "sha256.tsv"));
  EXPECT_EQ(core::sha256_file(file), want);  // from the cache
  { std::ofstream(file, std::ios::app) << "more"; }
  const std::string changed = sha256sum_of(file);
  EXPECT_NE(changed, want);
  EXPECT_EQ(core::sha256_file(file), changed);
  EXPECT_THROW(core::sha256_file((dir / "absent").string()), IoError);
  ::unsetenv("XDG_CACHE_HOME");
  fs::remove_all(dir);
}

TEST(Allocator, TuningCanBeTurnedOff) {
  setenv("HAC_MALLOC_TUNE", "0", 1);
  EXPECT_NE(core::tune_allocator().find("glibc defaults"), std::string::npos);
  unsetenv("HAC_MALLOC_TUNE");
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer replaces malloc; glibc's thresholds do not exist there.
  EXPECT_NE(core::tune_allocator().find("refused"), std::string::npos);
#else
  EXPECT_NE(core::tune_allocator().find("kept on the heap"), std::string::npos);
#endif
}

}  // namespace
}  // namespace runner
