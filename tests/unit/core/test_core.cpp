// Unit tests of src/core: exit codes of the error types, build information, allocator tuning.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "core/build_info.h"
#include "core/error.h"
#include "core/allocator.h"

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
