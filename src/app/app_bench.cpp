// `hac bench comm`: all-reduce and all-gather latency and bandwidth for a range of sizes, on
// the MPI (CPU) or NCCL (GPU) communicator. Later issues add step and data benchmarks here.
#include <CLI/CLI.hpp>
#include <ATen/ATen.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <iostream>

#include "app/app.h"
#include "core/error.h"
#include "core/log.h"
#include "comm/runtime.h"

namespace runner::app {
namespace {

struct BenchCommOptions {
  std::vector<int64_t> sizes = {8, 1024, 64 << 10, 1 << 20, 16 << 20, 64 << 20};
  std::string op = "allreduce";
  std::string backend = "mpi";
  int warmup = 3;
  double min_seconds = 0.3;
  int max_iters = 1000;
  std::string json_out;
};

// Times `iters` calls of `f` on every rank and returns the slowest rank's mean seconds per call.
template <typename F>
double time_collective(comm::Comm& comm, int iters, F&& f) {
  comm.barrier();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  comm.barrier();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  at::Tensor m = at::full({1}, dt, at::kDouble);
  comm.all_reduce(m, comm::ReduceOp::kMax);
  return m.item<double>();
}

int run_bench_comm(const BenchCommOptions& o) {
  auto world = comm::init_world();
  comm::CommPtr comm = world;
  at::TensorOptions topt = at::TensorOptions().dtype(at::kFloat);
  if (o.backend == "nccl") {
    comm = comm::make_nccl_comm(world);
    topt = topt.device(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(comm->local_rank())));
  }
  const int w = comm->world_size();
  core::log_info("bench comm: {} on {} rank(s), backend {}, float32", o.op, w, comm->backend());
  if (w == 1) {
    core::log_info("a world of 1 moves no data: times are the call overhead, bandwidths are 0");
  }
  core::log_info("{:>12} {:>8} {:>12} {:>12} {:>12}", "bytes", "iters", "time_us", "algbw_GB/s",
                 "busbw_GB/s");
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t bytes : o.sizes) {
    const int64_t n = std::max<int64_t>(1, bytes / 4);
    at::Tensor t = at::ones({n}, topt);
    auto call = [&] {
      if (o.op == "allreduce") {
        comm->all_reduce(t, comm::ReduceOp::kSum);
      } else {
        (void)comm->all_gather(t);
      }
    };
    for (int i = 0; i < o.warmup; ++i) call();
    // Calibrate the count on one call so each size runs for about min_seconds.
    double one = time_collective(*comm, 1, call);
    int iters = static_cast<int>(std::clamp(o.min_seconds / std::max(one, 1e-9), 3.0,
                                            static_cast<double>(o.max_iters)));
    double sec = time_collective(*comm, iters, call);
    const double real_bytes = static_cast<double>(n) * 4.0;
    // nccl-tests conventions: all-reduce moves 2(w-1)/w of the buffer per rank on the bus,
    // all-gather (w-1)/w of the gathered output.
    const double algbw = w == 1 ? 0.0 : (o.op == "allreduce" ? real_bytes : real_bytes * w) / sec / 1e9;
    const double factor = w == 1 ? 0.0 : (o.op == "allreduce" ? 2.0 * (w - 1) / w : (w - 1.0) / w);
    const double busbw = algbw * factor;
    core::log_info("{:>12} {:>8} {:>12.2f} {:>12.3f} {:>12.3f}", static_cast<int64_t>(real_bytes),
                   iters, sec * 1e6, algbw, busbw);
    rows.push_back({{"bytes", real_bytes}, {"iters", iters}, {"time_us", sec * 1e6},
                    {"algbw_gbs", algbw}, {"busbw_gbs", busbw}});
  }
  if (!o.json_out.empty() && comm->rank() == 0) {
    nlohmann::json doc = {{"op", o.op}, {"backend", comm->backend()}, {"world_size", w},
                          {"dtype", "float32"}, {"rows", rows}};
    std::ofstream f(o.json_out);
    if (!f) throw IoError(fmt::format("cannot write {}", o.json_out));
    f << doc.dump(2) << "\n";
    if (!f) throw IoError(fmt::format("error writing {}", o.json_out));
  }
  comm.reset();
  world->barrier();
  comm::finalize_world();
  return 0;
}

}  // namespace

void add_bench(CLI::App& app, Action& action) {
  auto* bench = app.add_subcommand("bench", "Benchmarks (comm, data, step)");
  bench->require_subcommand(1);
  add_bench_work(*bench, action);
  auto o = std::make_shared<BenchCommOptions>();
  auto* comm = bench->add_subcommand("comm", "All-reduce / all-gather latency and bandwidth");
  comm->add_option("--sizes", o->sizes, "Buffer sizes in bytes")->capture_default_str();
  comm->add_option("--op", o->op, "Collective")->check(CLI::IsMember({"allreduce", "allgather"}))
      ->capture_default_str();
  comm->add_option("--backend", o->backend, "mpi (CPU tensors) or nccl (CUDA tensors)")
      ->check(CLI::IsMember({"mpi", "nccl"}))->capture_default_str();
  comm->add_option("--warmup", o->warmup, "Untimed calls per size")->capture_default_str();
  comm->add_option("--min-seconds", o->min_seconds, "Target timed seconds per size")
      ->capture_default_str();
  comm->add_option("--json", o->json_out, "Also write the rows as JSON (rank 0)");
  comm->callback([&action, o] { action = [o] { return run_bench_comm(*o); }; });
}

}  // namespace runner::app
