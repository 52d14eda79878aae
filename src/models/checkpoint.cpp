// torch.save zip containers (checked, then read by LibTorch) and hac checkpoints; writing is in
// checkpoint_write.cpp.
#include "models/checkpoint.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"

namespace runner::models {
namespace {

constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kLocalSig = 0x04034b50;
constexpr size_t kEocdSize = 22;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalHeaderSize = 30;
// A state dict's pickle is kilobytes to a few megabytes; the caps keep a corrupted size field
// from turning into a large allocation before anything else is checked.
constexpr uint64_t kMaxPickleBytes = uint64_t{1} << 30;
constexpr uint64_t kMaxCentralDirBytes = uint64_t{256} << 20;

uint64_t le(const char* p, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<uint8_t>(p[k]);
  return v;
}

// The records of a zip-format torch.save file, by name below the archive's top folder.
struct ZipIndex {
  std::string archive;
  std::unordered_map<std::string, uint64_t> sizes;
};

class FileReader {
 public:
  explicit FileReader(const std::string& path) : path_(path) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw IoError(fmt::format("{}: no such file", path));
    if (!std::filesystem::is_regular_file(path, ec))
      throw IoError(fmt::format("{}: not a regular file", path));
    f_.open(path, std::ios::binary);
    if (!f_) throw IoError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    f_.seekg(0, std::ios::end);
    size_ = static_cast<uint64_t>(f_.tellg());
  }
  uint64_t size() const { return size_; }
  std::string read(uint64_t offset, uint64_t n) {
    if (offset > size_ || n > size_ - offset) {
      throw IoError(fmt::format("{}: truncated or corrupt zip (needs bytes {}..{} of {})", path_,
                                offset, offset + n, size_));
    }
    std::string buf(static_cast<size_t>(n), '\0');
    f_.clear();
    f_.seekg(static_cast<std::streamoff>(offset));
    f_.read(buf.data(), static_cast<std::streamsize>(n));
    if (static_cast<uint64_t>(f_.gcount()) != n)
      throw IoError(fmt::format("{}: read error", path_));
    return buf;
  }

 private:
  std::string path_;
  std::ifstream f_;
  uint64_t size_ = 0;
};

[[noreturn]] void corrupt_zip(const std::string& path, const std::string& why) {
  throw IoError(fmt::format("{}: corrupt or truncated torch.save zip archive: {}", path, why));
}

// No end record: say whether this is a damaged zip, a pre-1.6 torch.save file or something else.
[[noreturn]] void no_zip_end(const std::string& path, FileReader& f) {
  const std::string head = f.read(0, std::min<uint64_t>(f.size(), 4));
  if (head == std::string("PK\x03\x04", 4))
    corrupt_zip(path, "no end-of-archive record (truncated?)");
  if (!head.empty() && static_cast<uint8_t>(head[0]) == 0x80) {
    throw IoError(
        fmt::format("{}: a legacy (pre-zip) torch.save file, which is not supported; re-save it "
                    "in Python with torch.save(torch.load(old), new)",
                    path));
  }
  throw IoError(fmt::format("{}: not a torch.save file (not a zip archive)", path));
}

// Reads the central directory and checks every record the way LibTorch's reader will use it:
// stored (torch.save never compresses), and inside the file. LibTorch allocates a record's
// claimed size before reading it, so this check bounds every allocation by the file size.
ZipIndex scan_zip(const std::string& path) {
  FileReader f(path);
  const uint64_t size = f.size();
  if (size == 0) throw IoError(fmt::format("{}: file is empty", path));
  if (size < kEocdSize) no_zip_end(path, f);
  const uint64_t tail_len = std::min<uint64_t>(size, kEocdSize + 0xffff);
  const std::string tail = f.read(size - tail_len, tail_len);
  int64_t at = static_cast<int64_t>(tail_len - kEocdSize);
  while (at >= 0 && le(tail.data() + at, 4) != kEocdSig) --at;
  if (at < 0) no_zip_end(path, f);
  const uint64_t eocd = size - tail_len + static_cast<uint64_t>(at);
  const char* e = tail.data() + at;
  uint64_t entries = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
  if (eocd >= 20) {
    const std::string loc = f.read(eocd - 20, 20);
    if (le(loc.data(), 4) == kZip64LocatorSig) {
      const std::string z = f.read(le(loc.data() + 8, 8), 56);
      if (le(z.data(), 4) != kZip64EocdSig) corrupt_zip(path, "bad zip64 end record");
      entries = le(z.data() + 32, 8);
      cd_size = le(z.data() + 40, 8);
      cd_offset = le(z.data() + 48, 8);
    }
  }
  if (cd_offset > size || cd_size > size - cd_offset || cd_size > kMaxCentralDirBytes ||
      entries > cd_size / kCentralSize) {
    corrupt_zip(path, "bad central directory location or size");
  }
  const std::string cd = f.read(cd_offset, cd_size);
  ZipIndex index;
  size_t p = 0;
  for (uint64_t k = 0; k < entries; ++k) {
    if (cd.size() - p < kCentralSize || le(cd.data() + p, 4) != kCentralSig) {
      corrupt_zip(path, fmt::format("bad central directory entry {}", k));
    }
    const char* h = cd.data() + p;
    const uint64_t method = le(h + 10, 2), name_len = le(h + 28, 2), extra_len = le(h + 30, 2),
                   comment_len = le(h + 32, 2);
    uint64_t comp = le(h + 20, 4), uncomp = le(h + 24, 4), local = le(h + 42, 4);
    if (cd.size() - p - kCentralSize < name_len + extra_len + comment_len) {
      corrupt_zip(path, fmt::format("bad central directory entry {}", k));
    }
    std::string name(h + kCentralSize, static_cast<size_t>(name_len));
    // Zip64 sizes and offsets sit in extra field 0x0001, in this order, for each 0xffffffff.
    const char* x = h + kCentralSize + name_len;
    for (uint64_t q = 0; q + 4 <= extra_len;) {
      const uint64_t id = le(x + q, 2), len = le(x + q + 2, 2);
      if (q + 4 + len > extra_len) break;
      if (id == 1) {
        uint64_t r = q + 4;
        for (uint64_t* field : {&uncomp, &comp, &local}) {
          if (*field != 0xffffffffu) continue;
          if (r + 8 > q + 4 + len) corrupt_zip(path, "short zip64 field");
          *field = le(x + r, 8);
          r += 8;
        }
      }
      q += 4 + len;
    }
    if (method != 0) {
      corrupt_zip(path,
                  fmt::format("record '{}' is compressed (method {}), which torch.save never does",
                              name, method));
    }
    if (comp != uncomp)
      corrupt_zip(path, fmt::format("record '{}' has two sizes, {} and {}", name, comp, uncomp));
    if (local > size || uncomp > size - local ||
        kLocalHeaderSize + name_len > size - local - uncomp) {
      corrupt_zip(path, fmt::format("record '{}' ({} bytes at {}) exceeds the file of {} bytes",
                                    name, uncomp, local, size));
    }
    // The CRC-32 every writer (torch.save, hac) stores: a flipped byte anywhere in a record is
    // found here, before any value reaches a model.
    {
      const uint64_t want_crc = le(h + 16, 4);
      const std::string lh = f.read(local, kLocalHeaderSize);
      if (le(lh.data(), 4) != kLocalSig) corrupt_zip(path, fmt::format("record '{}': bad local header", name));
      const uint64_t data_at = local + kLocalHeaderSize + le(lh.data() + 26, 2) + le(lh.data() + 28, 2);
      if (data_at > size || uncomp > size - data_at) {
        corrupt_zip(path, fmt::format("record '{}' ({} bytes at {}) exceeds the file of {} bytes", name, uncomp,
                                      data_at, size));
      }
      uLong crc = ::crc32(0L, Z_NULL, 0);
      constexpr uint64_t kChunk = 16u << 20;
      for (uint64_t done = 0; done < uncomp;) {
        const uint64_t n = std::min(kChunk, uncomp - done);
        const std::string chunk = f.read(data_at + done, n);
        crc = ::crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()));
        done += n;
      }
      if (static_cast<uint64_t>(crc) != want_crc) {
        corrupt_zip(path, fmt::format("record '{}' fails its CRC-32 check (stored {:08x}, computed {:08x}): the file "
                                      "is damaged", name, want_crc, static_cast<uint64_t>(crc)));
      }
    }
    if (k == 0) {
      const size_t slash = name.find('/');
      if (slash == std::string::npos) corrupt_zip(path, "records are not in a folder");
      index.archive = name.substr(0, slash);
    }
    if (name.size() > index.archive.size() &&
        name.compare(0, index.archive.size() + 1, index.archive + "/") == 0) {
      index.sizes[name.substr(index.archive.size() + 1)] = uncomp;
    }
    p += kCentralSize + name_len + extra_len + comment_len;
  }
  if (entries == 0) corrupt_zip(path, "no records");
  return index;
}

c10::Storage read_storage(caffe2::serialize::PyTorchStreamReader& reader, const ZipIndex& index,
                          const std::string& path, const std::string& key, uint64_t nbytes) {
  const std::string name = "data/" + key;
  auto it = index.sizes.find(name);
  if (it == index.sizes.end())
    throw IoError(fmt::format("{}: storage record {} is missing", path, name));
  if (it->second != nbytes) {
    throw IoError(fmt::format("{}: storage record {} has {} bytes, the pickle expects {}", path,
                              name, it->second, nbytes));
  }
  auto [ptr, n] = reader.getRecord(name);
  if (n != nbytes)
    throw IoError(
        fmt::format("{}: storage record {} read {} bytes, expected {}", path, name, n, nbytes));
  return c10::Storage(c10::Storage::use_byte_size_t(), n, std::move(ptr), /*allocator=*/nullptr,
                      /*resizable=*/false);
}

// A non-empty dict of str -> tensor, in file order; nullopt for anything else.
std::optional<NamedTensors> as_named_tensors(const c10::IValue& v) {
  if (!v.isGenericDict()) return std::nullopt;
  NamedTensors out;
  for (const auto& entry : v.toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isTensor()) return std::nullopt;
    out.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  if (out.empty()) return std::nullopt;
  return out;
}

std::optional<c10::IValue> dict_get(const c10::impl::GenericDict& dict, const std::string& key) {
  for (const auto& entry : dict) {
    if (entry.key().isString() && entry.key().toStringRef() == key) return entry.value();
  }
  return std::nullopt;
}

c10::impl::GenericDict tensor_dict(const NamedTensors& tensors, const std::string& path,
                                   const char* what) {
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [name, t] : tensors) {
    if (!t.defined())
      throw IoError(fmt::format("{}: {} tensor '{}' is undefined", path, what, name));
    if (d.contains(name)) throw IoError(fmt::format("{}: {} holds '{}' twice", path, what, name));
    d.insert(name, t.detach().cpu());
  }
  return d;
}

NamedTensors named_tensors_field(const c10::impl::GenericDict& top, const std::string& key,
                                 const std::string& path, bool allow_empty) {
  std::optional<c10::IValue> v = dict_get(top, key);
  if (!v || !v->isGenericDict())
    throw IoError(fmt::format("{}: checkpoint key '{}' is missing or not a dict", path, key));
  if (allow_empty && v->toGenericDict().empty()) return {};
  std::optional<NamedTensors> t = as_named_tensors(*v);
  if (!t)
    throw IoError(fmt::format("{}: checkpoint key '{}' is not a dict of str -> tensor", path, key));
  return *t;
}

}  // namespace

c10::IValue load_torch_file(const std::string& path) {
  const ZipIndex index = scan_zip(path);
  auto pkl = index.sizes.find("data.pkl");
  if (pkl == index.sizes.end()) {
    throw IoError(fmt::format("{}: not a torch.save file: the zip has no {}/data.pkl record", path,
                              index.archive));
  }
  if (pkl->second > kMaxPickleBytes)
    throw IoError(fmt::format("{}: data.pkl of {} bytes is implausibly large", path, pkl->second));
  try {
    caffe2::serialize::PyTorchStreamReader reader(path);
    auto [data, size] = reader.getRecord("data.pkl");
    if (size != pkl->second)
      throw IoError(
          fmt::format("{}: data.pkl read {} bytes, expected {}", path, size, pkl->second));
    detail::StorageLoader loader = [&](const std::string& key, uint64_t nbytes) {
      return read_storage(reader, index, path, key, nbytes);
    };
    return detail::unpickle_torch_save(static_cast<const char*>(data.get()), size, loader, path);
  } catch (const IoError&) {
    throw;
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: corrupt zip archive: {}", path, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw IoError(fmt::format("{}: corrupt zip archive: {}", path, e.what()));
  }
}

NamedTensors state_dict_of(const c10::IValue& value, const std::string& path_for_messages) {
  if (!value.isGenericDict()) {
    throw IoError(fmt::format("{}: holds a {}, not a dict of model weights", path_for_messages,
                              value.tagKind()));
  }
  const c10::impl::GenericDict top = value.toGenericDict();
  if (std::optional<c10::IValue> model = dict_get(top, "model")) {
    if (std::optional<NamedTensors> t = as_named_tensors(*model)) return *t;
    throw IoError(
        fmt::format("{}: 'model' is not a non-empty dict of name -> tensor", path_for_messages));
  }
  if (std::optional<NamedTensors> t = as_named_tensors(value)) return *t;
  std::vector<std::string> keys;
  for (const auto& entry : top) {
    keys.push_back(entry.key().isString() ? entry.key().toStringRef()
                                          : std::to_string(entry.key().toInt()));
    if (keys.size() == 8) break;
  }
  throw IoError(
      fmt::format("{}: no model weights: neither a 'model' dict of tensors nor a dict of "
                  "tensors (top-level keys: {})",
                  path_for_messages, fmt::join(keys, ", ")));
}

void save_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  if (ckpt.model.empty())
    throw IoError(fmt::format("{}: refusing to save a checkpoint without model tensors", path));
  c10::impl::GenericDict top(c10::StringType::get(), c10::AnyType::get());
  top.insert("format", std::string(kCheckpointFormat));
  top.insert("model", tensor_dict(ckpt.model, path, "model"));
  top.insert("optimizer", tensor_dict(ckpt.optimizer, path, "optimizer"));
  top.insert("step", ckpt.step);
  if (ckpt.rng_state.defined()) {
    if (ckpt.rng_state.scalar_type() != at::kByte) {
      throw IoError(fmt::format("{}: rng_state must be uint8, not {}", path,
                                c10::toString(ckpt.rng_state.scalar_type())));
    }
    top.insert("rng_state", ckpt.rng_state.detach().cpu());
  } else {
    top.insert("rng_state", c10::IValue());
  }
  top.insert("config", ckpt.config_yaml);
  c10::impl::GenericDict extras(c10::StringType::get(), c10::AnyType::get());
  for (const auto& [k, v] : ckpt.extras) extras.insert(k, v);
  top.insert("extras", extras);
  save_torch_file(path, c10::IValue(top));
}

Checkpoint load_checkpoint(const std::string& path) {
  const c10::IValue value = load_torch_file(path);
  Checkpoint ckpt;
  std::optional<c10::IValue> format;
  if (value.isGenericDict()) format = dict_get(value.toGenericDict(), "format");
  if (!format) {
    ckpt.model = state_dict_of(value, path);  // a released MERU/CLIP file or a bare state dict
    return ckpt;
  }
  if (!format->isString() || format->toStringRef() != kCheckpointFormat) {
    throw IoError(fmt::format("{}: unsupported checkpoint format {} (expected {})", path,
                              format->isString() ? format->toStringRef() : format->tagKind(),
                              kCheckpointFormat));
  }
  const c10::impl::GenericDict top = value.toGenericDict();
  ckpt.model = named_tensors_field(top, "model", path, /*allow_empty=*/false);
  ckpt.optimizer = named_tensors_field(top, "optimizer", path, /*allow_empty=*/true);
  std::optional<c10::IValue> step = dict_get(top, "step");
  if (!step || !step->isInt())
    throw IoError(fmt::format("{}: checkpoint key 'step' is missing or not an int", path));
  ckpt.step = step->toInt();
  std::optional<c10::IValue> rng = dict_get(top, "rng_state");
  if (!rng || !(rng->isNone() || (rng->isTensor() && rng->toTensor().scalar_type() == at::kByte))) {
    throw IoError(fmt::format(
        "{}: checkpoint key 'rng_state' is missing or not a uint8 tensor / None", path));
  }
  if (rng->isTensor()) ckpt.rng_state = rng->toTensor();
  std::optional<c10::IValue> config = dict_get(top, "config");
  if (!config || !config->isString())
    throw IoError(fmt::format("{}: checkpoint key 'config' is missing or not a str", path));
  ckpt.config_yaml = config->toStringRef();
  std::optional<c10::IValue> extras = dict_get(top, "extras");
  if (!extras || !extras->isGenericDict())
    throw IoError(fmt::format("{}: checkpoint key 'extras' is missing or not a dict", path));
  for (const auto& entry : extras->toGenericDict()) {
    if (!entry.key().isString() || !entry.value().isString()) {
      throw IoError(fmt::format("{}: checkpoint 'extras' must map str -> str", path));
    }
    ckpt.extras[entry.key().toStringRef()] = entry.value().toStringRef();
  }
  return ckpt;
}

}  // namespace runner::models
