// save_torch_file: hac's own pickler, emitting only what Python's torch.save emits for a tree of
// dicts, lists, tuples, tensors and plain values, so torch.load(weights_only=True) accepts it.
//
// LibTorch's torch::jit::pickle_save wraps every container in torch.jit._pickle.restore_type_tag
// (and typed lists in build_intlist & co.), globals that weights_only unpicklers refuse. The
// stream here is pickle protocol 2, as torch.save writes by default: containers are built with
// EMPTY_DICT/EMPTY_LIST + MARK ... SETITEMS/APPENDS, tensors as
// torch._utils._rebuild_tensor_v2(persistent ('storage', torch.<T>Storage, key, 'cpu', numel),
// offset, size, stride, False, collections.OrderedDict()), one "data/<key>" record per storage.
#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "models/checkpoint.h"

namespace runner::models {
namespace {

constexpr int kMaxSaveDepth = 200;

// The storage class torch.save names for each dtype (torch/storage.py's legacy names).
const char* storage_class(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "FloatStorage";
    case at::kDouble: return "DoubleStorage";
    case at::kHalf: return "HalfStorage";
    case at::kBFloat16: return "BFloat16Storage";
    case at::kLong: return "LongStorage";
    case at::kInt: return "IntStorage";
    case at::kShort: return "ShortStorage";
    case at::kChar: return "CharStorage";
    case at::kByte: return "ByteStorage";
    case at::kBool: return "BoolStorage";
    case at::kComplexFloat: return "ComplexFloatStorage";
    case at::kComplexDouble: return "ComplexDoubleStorage";
    default: return nullptr;
  }
}

class Pickler {
 public:
  void write(const c10::IValue& root) {
    out_ += "\x80\x02";  // PROTO 2
    value(root, "", 0);
    out_ += '.';  // STOP
  }
  const std::string& bytes() const { return out_; }
  // Storages in key order: key i is storages_[i].
  const std::vector<c10::Storage>& storages() const { return storages_; }

 private:
  void op(char c) { out_ += c; }
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out_ += static_cast<char>((v >> (8 * k)) & 0xff);
  }
  void global(const char* module, const char* name) {
    op('c');
    out_ += module;
    out_ += '\n';
    out_ += name;
    out_ += '\n';
  }
  void str(const std::string& s) {
    op('X');  // BINUNICODE: 4-byte length, UTF-8 bytes
    le(s.size(), 4);
    out_ += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K'), le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      op('M'), le(static_cast<uint64_t>(v), 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J'), le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      // LONG1: little-endian two's complement, as few bytes as keep the sign.
      std::string b;
      uint64_t u = static_cast<uint64_t>(v);
      for (int k = 0; k < 8; ++k) b += static_cast<char>((u >> (8 * k)) & 0xff);
      while (b.size() > 1) {
        const auto last = static_cast<uint8_t>(b.back()), prev = static_cast<uint8_t>(b[b.size() - 2]);
        if ((last == 0x00 && !(prev & 0x80)) || (last == 0xff && (prev & 0x80))) b.pop_back();
        else break;
      }
      out_ += '\x8a';
      le(b.size(), 1);
      out_ += b;
    }
  }
  void real(double d) {
    op('G');  // BINFLOAT: big-endian IEEE double
    uint64_t u;
    std::memcpy(&u, &d, sizeof u);
    for (int k = 7; k >= 0; --k) out_ += static_cast<char>((u >> (8 * k)) & 0xff);
  }
  void int_tuple(at::IntArrayRef v) {
    if (v.empty()) return op(')');
    op('(');
    for (int64_t x : v) integer(x);
    op('t');
  }

  int64_t storage_key(const at::Tensor& t) {
    const c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
    auto [it, added] = keys_.emplace(impl, static_cast<int64_t>(storages_.size()));
    if (added) storages_.push_back(t.storage());
    return it->second;
  }

  void tensor(const at::Tensor& t0, const std::string& where) {
    if (!t0.defined()) throw IoError(fmt::format("cannot save an undefined tensor at {}", where));
    if (!t0.device().is_cpu() || t0.layout() != at::kStrided || t0.is_quantized()) {
      throw IoError(fmt::format("cannot save tensor at {}: needs a dense CPU tensor, not {} on {}", where,
                                t0.toString(), t0.device().str()));
    }
    const at::Tensor t = t0.detach();
    const char* cls = storage_class(t.scalar_type());
    if (cls == nullptr)
      throw IoError(fmt::format("cannot save tensor at {}: dtype {} has no torch storage class", where,
                                c10::toString(t.scalar_type())));
    const int64_t key = storage_key(t);
    const auto item = static_cast<int64_t>(t.element_size());
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');  // the persistent id
    str("storage");
    global("torch", cls);
    str(std::to_string(key));
    str("cpu");
    integer(static_cast<int64_t>(t.storage().nbytes()) / item);
    op('t');
    op('Q');  // BINPERSID
    integer(t.storage_offset());
    int_tuple(t.sizes());
    int_tuple(t.strides());
    op('\x89');  // requires_grad False
    global("collections", "OrderedDict");  // backward hooks: OrderedDict()
    op(')');
    op('R');
    op('t');
    op('R');
  }

  void value(const c10::IValue& v, const std::string& where, int depth) {
    if (depth > kMaxSaveDepth)
      throw IoError(fmt::format("cannot save: nesting deeper than {} at {}", kMaxSaveDepth, where));
    if (v.isNone()) return op('N');
    if (v.isBool()) return op(v.toBool() ? '\x88' : '\x89');
    if (v.isInt()) return integer(v.toInt());
    if (v.isDouble()) return real(v.toDouble());
    if (v.isString()) return str(v.toStringRef());
    if (v.isTensor()) return tensor(v.toTensor(), where);
    if (v.isList()) {
      const c10::List<c10::IValue> list = v.toList();
      op(']');
      if (list.empty()) return;
      op('(');
      for (size_t k = 0; k < list.size(); ++k) value(list.get(k), fmt::format("{}[{}]", where, k), depth + 1);
      return op('e');
    }
    if (v.isTuple()) {
      const auto& elems = v.toTupleRef().elements();
      if (elems.empty()) return op(')');
      op('(');
      for (size_t k = 0; k < elems.size(); ++k) value(elems[k], fmt::format("{}[{}]", where, k), depth + 1);
      return op('t');
    }
    if (v.isGenericDict()) {
      const c10::impl::GenericDict dict = v.toGenericDict();
      bool str_keys = true, int_keys = true;
      for (const auto& e : dict) {
        str_keys = str_keys && e.key().isString();
        int_keys = int_keys && e.key().isInt();
      }
      if (!str_keys && !int_keys)
        throw IoError(fmt::format("cannot save dict at {}: keys must be all str or all int", where));
      op('}');
      if (dict.empty()) return;
      op('(');
      for (const auto& e : dict) {
        const std::string key = e.key().isString() ? e.key().toStringRef() : std::to_string(e.key().toInt());
        value(e.key(), where, depth + 1);
        value(e.value(), where + "/" + key, depth + 1);
      }
      return op('u');
    }
    throw IoError(fmt::format("cannot save a {} at {}: only dicts, lists, tuples, tensors, str, int, float, "
                              "bool and None",
                              v.tagKind(), where));
  }

  std::string out_;
  std::vector<c10::Storage> storages_;
  std::unordered_map<const c10::StorageImpl*, int64_t> keys_;
};

}  // namespace

void save_torch_file(const std::string& path, const c10::IValue& value) {
  Pickler pickler;
  try {
    pickler.write(value);
  } catch (const IoError& e) {
    throw IoError(fmt::format("{}: {}", path, e.what()));  // the file the caller meant to write
  }
  std::string container;
  try {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      container.append(static_cast<const char*>(data), n);
      return n;
    });
    writer.writeRecord("data.pkl", pickler.bytes().data(), pickler.bytes().size());
    // torch.save >= 2.1 records the byte order of the storages; older readers ignore it.
    writer.writeRecord("byteorder", "little", 6);
    const auto& storages = pickler.storages();
    for (size_t k = 0; k < storages.size(); ++k) {
      const c10::Storage& s = storages[k];
      writer.writeRecord(fmt::format("data/{}", k), s.data(), s.nbytes());
    }
    writer.writeEndOfFile();
  } catch (const c10::Error& e) {
    throw IoError(fmt::format("{}: cannot serialize: {}", path, e.what_without_backtrace()));
  }
  core::write_file_atomically(path, container.data(), container.size());
}

}  // namespace runner::models
