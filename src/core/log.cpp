// Rank-aware logging on top of spdlog (one stdout and one stderr sink, patterns carry the rank).
#include "core/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "core/build_info.h"

namespace runner::core {
namespace {

struct LogState {
  std::mutex mu;
  int rank = 0;
  int world = 1;
  bool all_ranks = false;
  LogLevel level = LogLevel::kInfo;
  std::string prefix = "[rank 0]";
  std::shared_ptr<spdlog::logger> out;
  std::shared_ptr<spdlog::logger> err;
  std::FILE* file = nullptr;  // log_to_file: a copy of this process's lines, with UTC times
};

LogState& state() {
  static LogState* s = [] {
    auto* st = new LogState();  // never destroyed: logging must work during static teardown
    st->out = std::make_shared<spdlog::logger>("hac-out", std::make_shared<spdlog::sinks::stdout_sink_mt>());
    st->err = std::make_shared<spdlog::logger>("hac-err", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    for (auto* l : {st->out.get(), st->err.get()}) {
      l->set_pattern("%v");
      l->set_level(spdlog::level::trace);
      l->flush_on(spdlog::level::trace);
    }
    if (const char* v = std::getenv("HAC_LOG_ALL_RANKS"); v != nullptr && std::string(v) == "1") {
      st->all_ranks = true;
    }
    if (const char* v = std::getenv("HAC_LOG_LEVEL"); v != nullptr && std::string(v) == "debug") {
      st->level = LogLevel::kDebug;
    }
    return st;
  }();
  return *s;
}

}  // namespace

const std::string& host_name() {
  static const std::string name = [] {
    char buf[256] = {0};
    if (gethostname(buf, sizeof(buf) - 1) != 0) return std::string("unknown-host");
    return std::string(buf);
  }();
  return name;
}

void log_set_rank(int rank, int world_size) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.rank = rank;
  s.world = world_size;
  s.prefix = fmt::format("[rank {}@{}]", rank, host_name());
}

void log_set_all_ranks(bool all) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.all_ranks = all;
}

void log_set_level(LogLevel level) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.level = level;
}

int log_rank() { return state().rank; }

std::string utc_now_iso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void log_to_file(const std::string& path) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.file != nullptr) std::fclose(s.file);
  s.file = std::fopen(path.c_str(), "a");
  if (s.file == nullptr) return;  // the terminal still has every line; a log file is a copy
  std::setvbuf(s.file, nullptr, _IOLBF, 0);
}

void log_line(LogLevel level, const std::string& message) {
  auto& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (level < s.level) return;
  const std::string now = utc_now_iso8601();
  if (s.file != nullptr) {
    const char* kind = level == LogLevel::kWarn ? " warning:" : level == LogLevel::kError ? " error:" : "";
    std::fprintf(s.file, "%s %s%s %s\n", now.c_str(), s.prefix.c_str(), kind, message.c_str());
  }
  switch (level) {
    case LogLevel::kDebug:
    case LogLevel::kInfo:
      if (s.rank == 0 || s.all_ranks) s.out->info("{} {} {}", now, s.prefix, message);
      break;
    case LogLevel::kWarn:
      s.err->warn("{} {} warning: {}", now, s.prefix, message);
      break;
    case LogLevel::kError:
      s.err->error("{} {} error: {}", now, s.prefix, message);
      break;
  }
}

void log_error_line(const std::string& what) { log_line(LogLevel::kError, what); }

const char* runner_version() { return RUNNER_VERSION; }
const char* yaml_cpp_version() { return RUNNER_YAML_CPP_VERSION; }

}  // namespace runner::core
