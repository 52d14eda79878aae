// Checkpoint I/O: safe torch.save reading, torch.load-compatible writing, hac checkpoints, inspect.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <c10/core/Storage.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace runner::models {

// Named tensors in file order (a state dict keeps its order; dicts with duplicate names are
// impossible in a file, so callers may rely on unique names).
using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// The value of "format" in hac's own checkpoints.
constexpr const char* kCheckpointFormat = "hac-checkpoint/1";

// Reads a zip-format torch.save file (Python torch.save, LibTorch pickle_save) into an IValue
// tree: dict and collections.OrderedDict -> GenericDict (insertion order kept; all keys str or
// all int), list -> GenericList, tuple, tensor (CPU, any dtype/shape/stride/offset; tensors that
// shared a storage in the file share one here; requires_grad is dropped), str, int, float,
// bool, None. Like torch.load(weights_only=True) it only accepts the globals torch.save emits for
// tensors, storages and containers. Throws IoError naming the file when it is missing, empty,
// not a zip-format torch.save file, truncated, corrupted, or holds any other object.
c10::IValue load_torch_file(const std::string& path);

// Writes `value` (nested dicts with str or int keys, lists, tuples, CPU strided tensors, str,
// int, float, bool, None) as a zip-format file that Python's torch.load and load_torch_file
// read, with only the globals torch.save emits (so torch.load(weights_only=True) accepts it):
// dicts come back as dict, lists as list, tuples as tuple; tensors sharing a storage share it. Atomic: a temp file in the same directory, fsync, rename, fsync of the directory.
// Throws IoError on an unsupported value (naming where it sits) or a failed write.
void save_torch_file(const std::string& path, const c10::IValue& value);

// The model weights of a loaded file: value["model"] when the top level is a dict whose "model"
// is a non-empty dict of str -> tensor (released MERU/CLIP files, hac checkpoints), else the top
// level itself when it is such a dict. Tensors are returned as stored (no copies). Throws
// IoError naming `path_for_messages` otherwise.
NamedTensors state_dict_of(const c10::IValue& value, const std::string& path_for_messages);

// hac's native training checkpoint.
struct Checkpoint {
  NamedTensors model;      // weights and buffers under MERU's parameter names
  NamedTensors optimizer;  // free-form names, e.g. "<param>.exp_avg", "<param>.exp_avg_sq"
  int64_t step = 0;
  at::Tensor rng_state;                       // [N] uint8 CPU generator state; may be undefined
  std::string config_yaml;                    // the resolved config
  std::map<std::string, std::string> extras;  // e.g. a serialized word tokenizer
};

// Writes {"format": kCheckpointFormat, "model": {...}, "optimizer": {...}, "step": int,
// "rng_state": tensor or None, "config": str, "extras": {str: str}} atomically; tensors are
// saved detached, from CPU copies when they live elsewhere. Throws IoError on duplicate names, a
// non-uint8 rng_state or a failed write.
void save_checkpoint(const std::string& path, const Checkpoint& ckpt);

// Reads a file written by save_checkpoint, or a released MERU/CLIP file / bare state dict
// (model only, step 0). Throws IoError naming the file and key on anything malformed.
Checkpoint load_checkpoint(const std::string& path);

// Text for `hac checkpoint inspect`: every tensor of the file (path inside the file, shape,
// dtype), then the model the weights imply: CLIP or MERU, image encoder (width, depth, heads
// guess, patch, image size), text encoder (width, depth, vocab, context), embed dim, exp(curv)
// and exp(logit_scale); a file without model weights says so. Throws IoError as load_torch_file.
std::string describe_checkpoint(const std::string& path);

namespace detail {

// Returns record "data/<key>" of the archive as a CPU storage of exactly `nbytes` bytes; throws
// IoError when it is missing or has another size.
using StorageLoader = std::function<c10::Storage(const std::string& key, uint64_t nbytes)>;

// Interprets the bytes of a torch.save `data.pkl` (the pickle opcode subset of protocols 2-4
// that torch.save and LibTorch emit) with storages from `load_storage`. Exposed for load_torch_file
// and the fuzz tests; throws IoError naming `path_for_messages` and the byte offset.
c10::IValue unpickle_torch_save(const char* data, size_t size, const StorageLoader& load_storage,
                                const std::string& path_for_messages);

}  // namespace detail
}  // namespace runner::models
