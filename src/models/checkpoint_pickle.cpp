// A restricted interpreter for torch.save pickles: tensor, storage and container globals only.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "models/checkpoint.h"

namespace runner::models::detail {
namespace {

// Deeper nesting than any state dict needs; bounds the recursion of the IValue conversion.
constexpr int kMaxDepth = 200;
// PyTorch tensors have at most 64 dimensions.
constexpr size_t kMaxDims = 64;
// Objects in the tree once shared containers are expanded (what a traversal of the result visits);
// bounds a file that nests one list twice in each of many levels. Real checkpoints hold thousands.
constexpr uint64_t kMaxExpandedObjects = uint64_t{1} << 24;
// GLOBAL names are short identifiers; a longer line means a corrupted stream.
constexpr size_t kMaxGlobalLine = 256;

enum class Kind : uint8_t {
  kNone,
  kBool,
  kInt,
  kFloat,
  kStr,
  kTuple,
  kList,
  kDict,
  kTensor,
  kStorage,
  kGlobal
};

enum class Callable : uint8_t {
  kOrderedDict,
  kRebuildTensorV2,
  kRebuildParameter,
  kRestoreTypeTag,
  kBuildList,
  kStorageType
};

// One Python object under construction. Nodes live in an arena and point at each other with raw
// pointers, so a hostile file that builds cycles or very deep chains cannot make destruction
// recurse; the conversion to IValue checks depth and cycles.
struct Node {
  Kind kind = Kind::kNone;
  Callable callable = Callable::kOrderedDict;  // kGlobal
  at::ScalarType dtype = at::kByte;            // kGlobal of a storage type, kStorage
  int64_t i = 0;                               // kBool, kInt
  double f = 0.0;                              // kFloat
  std::string s;                               // kStr; kGlobal: "module.name"
  std::vector<Node*> items;                    // kTuple, kList; kDict: key, value, key, value...
  at::Tensor tensor;                           // kTensor
  c10::Storage storage;                        // kStorage
};

// The pickle opcodes understood here (pickletools' names).
// clang-format off
enum class Op : uint8_t {
  kMark = '(', kStop = '.', kBinFloat = 'G', kBinInt = 'J', kBinInt1 = 'K', kBinInt2 = 'M',
  kNone = 'N', kBinPersId = 'Q', kReduce = 'R', kBinUnicode = 'X', kAppend = 'a', kBuild = 'b',
  kGlobal = 'c', kDict = 'd', kAppends = 'e', kBinGet = 'h', kLongBinGet = 'j', kList = 'l',
  kBinPut = 'q', kLongBinPut = 'r', kSetItem = 's', kTuple = 't', kSetItems = 'u',
  kEmptyTuple = ')', kEmptyList = ']', kEmptyDict = '}', kProto = 0x80, kTuple1 = 0x85,
  kTuple2 = 0x86, kTuple3 = 0x87, kNewTrue = 0x88, kNewFalse = 0x89, kLong1 = 0x8a,
  kShortBinUnicode = 0x8c, kStackGlobal = 0x93, kMemoize = 0x94, kFrame = 0x95,
};
// clang-format on

struct AllowedGlobal {
  const char* module;
  const char* name;
  Callable callable;
  at::ScalarType dtype;
};

// The allow-list, as torch.load(weights_only=True): what torch.save emits for tensors
// (_rebuild_tensor_v2, _rebuild_parameter for nn.Parameter), their typed storages, and
// OrderedDict (state dicts, and every tensor's empty backward-hooks argument). LibTorch's own
// pickle_save adds torch.jit._pickle.restore_type_tag around containers and build_*list around
// typed lists; in Python these are identity functions on the container, so accepting them lets
// files written by LibTorch programs (ours included) load without executing anything else.
constexpr AllowedGlobal kAllowedGlobals[] = {
    {"collections", "OrderedDict", Callable::kOrderedDict, at::kByte},
    {"torch._utils", "_rebuild_tensor_v2", Callable::kRebuildTensorV2, at::kByte},
    {"torch._utils", "_rebuild_parameter", Callable::kRebuildParameter, at::kByte},
    {"torch.jit._pickle", "restore_type_tag", Callable::kRestoreTypeTag, at::kByte},
    {"torch.jit._pickle", "build_intlist", Callable::kBuildList, at::kByte},
    {"torch.jit._pickle", "build_doublelist", Callable::kBuildList, at::kByte},
    {"torch.jit._pickle", "build_boollist", Callable::kBuildList, at::kByte},
    {"torch.jit._pickle", "build_tensorlist", Callable::kBuildList, at::kByte},
    {"torch", "FloatStorage", Callable::kStorageType, at::kFloat},
    {"torch", "DoubleStorage", Callable::kStorageType, at::kDouble},
    {"torch", "HalfStorage", Callable::kStorageType, at::kHalf},
    {"torch", "BFloat16Storage", Callable::kStorageType, at::kBFloat16},
    {"torch", "LongStorage", Callable::kStorageType, at::kLong},
    {"torch", "IntStorage", Callable::kStorageType, at::kInt},
    {"torch", "ShortStorage", Callable::kStorageType, at::kShort},
    {"torch", "CharStorage", Callable::kStorageType, at::kChar},
    {"torch", "ByteStorage", Callable::kStorageType, at::kByte},
    {"torch", "BoolStorage", Callable::kStorageType, at::kBool},
};

class TorchUnpickler {
 public:
  TorchUnpickler(const char* data, size_t size, const StorageLoader& load_storage,
                 const std::string& path)
      : data_(data), size_(size), load_storage_(load_storage), path_(path) {}

  c10::IValue run() {
    for (;;) {
      op_pos_ = pos_;
      const uint8_t op = read_u8();
      if (static_cast<Op>(op) == Op::kStop) break;
      step(op);
    }
    Node* result = pop();
    return to_ivalue(result, 0);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError(fmt::format("{}: corrupt or unsupported checkpoint: data.pkl byte {}: {}", path_,
                              op_pos_, what));
  }

  // Reading the stream: every read is bounded by the remaining bytes.
  const char* read_bytes(uint64_t n) {
    if (n > size_ - pos_)
      fail(fmt::format("truncated (needs {} more bytes, {} left)", n, size_ - pos_));
    const char* p = data_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint8_t read_u8() { return static_cast<uint8_t>(*read_bytes(1)); }
  uint64_t read_le(int n) {
    const auto* p = reinterpret_cast<const uint8_t*>(read_bytes(static_cast<uint64_t>(n)));
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
    return v;
  }
  std::string read_line() {
    const size_t limit = std::min(size_ - pos_, kMaxGlobalLine);
    const void* nl = std::memchr(data_ + pos_, '\n', limit);
    if (nl == nullptr) fail("GLOBAL name without end of line");
    const size_t n = static_cast<size_t>(static_cast<const char*>(nl) - (data_ + pos_));
    std::string line(data_ + pos_, n);
    pos_ += n + 1;
    return line;
  }

  Node* make(Kind kind) {
    nodes_.emplace_back();
    nodes_.back().kind = kind;
    return &nodes_.back();
  }
  Node* make_int(int64_t v) {
    Node* n = make(Kind::kInt);
    n->i = v;
    return n;
  }
  Node* make_str(uint64_t length) {
    const char* p = read_bytes(length);
    Node* n = make(Kind::kStr);
    n->s.assign(p, static_cast<size_t>(length));
    return n;
  }

  // The stack: Python's unpickler keeps items above a MARK on a separate list, so popping past
  // the newest mark is an underflow there; the same rule here.
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Node* n) { stack_.push_back(n); }
  Node* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Node* n = stack_.back();
    stack_.pop_back();
    return n;
  }
  Node* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  std::vector<Node*> pop_to_mark() {
    if (marks_.empty()) fail("no MARK on the stack");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Node*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  std::vector<Node*> pop_n(size_t k) {
    if (stack_.size() < floor() + k) fail("stack underflow");
    std::vector<Node*> items(stack_.end() - static_cast<std::ptrdiff_t>(k), stack_.end());
    stack_.resize(stack_.size() - k);
    return items;
  }
  void append_pairs(Node* dict, const std::vector<Node*>& items) {
    if (dict->kind != Kind::kDict) fail("SETITEM(S) on a non-dict");
    if (items.size() % 2 != 0) fail("odd number of items for a dict");
    dict->items.insert(dict->items.end(), items.begin(), items.end());
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  Node* memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail(fmt::format("memo key {} was never stored", index));
    return it->second;
  }

  void step(uint8_t byte) {
    switch (static_cast<Op>(byte)) {
      case Op::kProto: {
        const uint8_t v = read_u8();
        if (v < 2 || v > 4) fail(fmt::format("pickle protocol {} (expected 2 to 4)", v));
        break;
      }
      case Op::kFrame: (void)read_le(8); break;  // a size hint; the frame's data follows inline
      case Op::kEmptyDict: push(make(Kind::kDict)); break;
      case Op::kEmptyList: push(make(Kind::kList)); break;
      case Op::kEmptyTuple: push(make(Kind::kTuple)); break;
      case Op::kMark: marks_.push_back(stack_.size()); break;
      case Op::kTuple: push(make_container(Kind::kTuple, pop_to_mark())); break;
      case Op::kList: push(make_container(Kind::kList, pop_to_mark())); break;
      case Op::kTuple1: push(make_container(Kind::kTuple, pop_n(1))); break;
      case Op::kTuple2: push(make_container(Kind::kTuple, pop_n(2))); break;
      case Op::kTuple3: push(make_container(Kind::kTuple, pop_n(3))); break;
      case Op::kDict: {
        Node* n = make(Kind::kDict);
        append_pairs(n, pop_to_mark());
        push(n);
        break;
      }
      case Op::kSetItem: {
        Node* dict = top_after(2);  // found before the pop: argument order is unspecified
        append_pairs(dict, pop_n(2));
        break;
      }
      case Op::kSetItems: {
        std::vector<Node*> items = pop_to_mark();
        append_pairs(top(), items);
        break;
      }
      case Op::kAppend: {
        Node* list = top_after(1);
        append_items(list, pop_n(1));
        break;
      }
      case Op::kAppends: {
        std::vector<Node*> items = pop_to_mark();
        append_items(top(), items);
        break;
      }
      case Op::kBinUnicode: push(make_str(read_le(4))); break;
      case Op::kShortBinUnicode: push(make_str(read_u8())); break;
      case Op::kBinInt:
        push(make_int(static_cast<int32_t>(static_cast<uint32_t>(read_le(4)))));
        break;
      case Op::kBinInt1: push(make_int(read_u8())); break;
      case Op::kBinInt2: push(make_int(static_cast<int64_t>(read_le(2)))); break;
      case Op::kLong1: push(make_int(read_long1())); break;
      case Op::kBinFloat: {
        const auto* p = reinterpret_cast<const uint8_t*>(read_bytes(8));
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | p[k];  // big-endian, unlike the ints
        Node* n = make(Kind::kFloat);
        std::memcpy(&n->f, &bits, sizeof bits);
        push(n);
        break;
      }
      case Op::kNewTrue:
      case Op::kNewFalse: {
        Node* n = make(Kind::kBool);
        n->i = static_cast<Op>(byte) == Op::kNewTrue ? 1 : 0;
        push(n);
        break;
      }
      case Op::kNone: push(make(Kind::kNone)); break;
      case Op::kBinPut: memo_put(read_u8()); break;
      case Op::kLongBinPut: memo_put(read_le(4)); break;
      case Op::kMemoize: memo_put(memo_.size()); break;
      case Op::kBinGet: push(memo_get(read_u8())); break;
      case Op::kLongBinGet: push(memo_get(read_le(4))); break;
      case Op::kGlobal: {
        std::string module = read_line();
        std::string name = read_line();
        push(make_global(module, name));
        break;
      }
      case Op::kStackGlobal: {
        Node* name = pop();
        Node* module = pop();
        if (name->kind != Kind::kStr || module->kind != Kind::kStr)
          fail("STACK_GLOBAL of non-strings");
        push(make_global(module->s, name->s));
        break;
      }
      case Op::kReduce: {
        Node* args = pop();
        Node* callable = pop();
        push(reduce(callable, args));
        break;
      }
      case Op::kBuild:
        // Only a state dict's `_metadata` (per-module versions) is set this way; it is not needed.
        (void)pop();
        if (top()->kind != Kind::kDict) fail("BUILD on something other than an OrderedDict");
        break;
      case Op::kBinPersId: push(persistent_load(pop())); break;
      default: fail(fmt::format("unsupported pickle opcode 0x{:02x}", byte));
    }
  }

  Node* make_container(Kind kind, std::vector<Node*> items) {
    Node* n = make(kind);
    n->items = std::move(items);
    return n;
  }
  // The item below the top k (the target of SETITEM / APPEND).
  Node* top_after(size_t k) {
    if (stack_.size() < floor() + k + 1) fail("stack underflow");
    return stack_[stack_.size() - k - 1];
  }
  void append_items(Node* list, const std::vector<Node*>& items) {
    if (list->kind != Kind::kList) fail("APPEND(S) to a non-list");
    list->items.insert(list->items.end(), items.begin(), items.end());
  }
  // LONG1: a little-endian two's complement integer of n bytes.
  int64_t read_long1() {
    const uint8_t n = read_u8();
    if (n > 8) fail(fmt::format("integer of {} bytes does not fit int64", n));
    uint64_t v = n == 0 ? 0 : read_le(n);
    if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);
    int64_t out;
    std::memcpy(&out, &v, sizeof out);
    return out;
  }

  Node* make_global(const std::string& module, const std::string& name) {
    for (const AllowedGlobal& g : kAllowedGlobals) {
      if (module == g.module && name == g.name) {
        Node* n = make(Kind::kGlobal);
        n->callable = g.callable;
        n->dtype = g.dtype;
        n->s = module + "." + name;
        return n;
      }
    }
    fail(
        fmt::format("refusing global {}.{}: only tensors, storages and containers are loaded "
                    "(as torch.load(weights_only=True)); re-save the file with only those",
                    module, name));
  }

  Node* reduce(Node* callable, Node* args) {
    if (callable->kind != Kind::kGlobal) fail("REDUCE of something that is not a callable");
    if (args->kind != Kind::kTuple)
      fail(fmt::format("REDUCE of {} without an argument tuple", callable->s));
    const std::vector<Node*>& a = args->items;
    switch (callable->callable) {
      case Callable::kOrderedDict:
        if (!a.empty()) fail("collections.OrderedDict with arguments");
        return make(Kind::kDict);
      case Callable::kRebuildTensorV2:
        if (a.size() != 6 && a.size() != 7)
          fail(fmt::format("_rebuild_tensor_v2 with {} arguments", a.size()));
        return rebuild_tensor(a);
      case Callable::kRebuildParameter:
        if (a.size() != 3 || a[0]->kind != Kind::kTensor)
          fail("_rebuild_parameter without a tensor");
        return a[0];
      case Callable::kRestoreTypeTag:
        if (a.size() != 2 || a[1]->kind != Kind::kStr) fail("restore_type_tag with bad arguments");
        return a[0];
      case Callable::kBuildList:
        if (a.size() != 1 || a[0]->kind != Kind::kList)
          fail(fmt::format("{} without a list", callable->s));
        return a[0];
      case Callable::kStorageType: break;
    }
    fail(fmt::format("{} cannot be called", callable->s));
  }

  // ('storage', torch.<T>Storage, key, location, numel): every location loads to CPU.
  Node* persistent_load(Node* pid) {
    const std::vector<Node*>& p = pid->items;
    if (pid->kind != Kind::kTuple || p.size() != 5 || p[0]->kind != Kind::kStr ||
        p[0]->s != "storage" || p[1]->kind != Kind::kGlobal ||
        p[1]->callable != Callable::kStorageType || p[2]->kind != Kind::kStr ||
        p[3]->kind != Kind::kStr || p[4]->kind != Kind::kInt) {
      fail("persistent id is not ('storage', torch.<T>Storage, key, location, numel)");
    }
    const at::ScalarType dtype = p[1]->dtype;
    const int64_t numel = p[4]->i;
    uint64_t nbytes = 0;
    if (numel < 0 ||
        __builtin_mul_overflow(static_cast<uint64_t>(numel),
                               static_cast<uint64_t>(c10::elementSize(dtype)), &nbytes)) {
      fail(fmt::format("storage '{}' has an impossible size {}", p[2]->s, numel));
    }
    Node* n = make(Kind::kStorage);
    n->dtype = dtype;
    auto it = storages_.find(p[2]->s);
    if (it != storages_.end()) {
      // The same record seen again (torch 2 may view one storage with several dtypes).
      if (it->second.nbytes() != nbytes)
        fail(fmt::format("storage '{}' used with two sizes", p[2]->s));
      n->storage = it->second;
    } else {
      n->storage = load_storage_(p[2]->s, nbytes);
      storages_.emplace(p[2]->s, n->storage);
    }
    return n;
  }

  static bool int_tuple(const Node* n, std::vector<int64_t>& out) {
    if (n->kind != Kind::kTuple || n->items.size() > kMaxDims) return false;
    for (const Node* v : n->items) {
      if (v->kind != Kind::kInt || v->i < 0) return false;
      out.push_back(v->i);
    }
    return true;
  }

  // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]): the view
  // is checked against the storage before it exists, so a corrupted file cannot read past it.
  Node* rebuild_tensor(const std::vector<Node*>& a) {
    std::vector<int64_t> sizes, strides;
    if (a[0]->kind != Kind::kStorage || a[1]->kind != Kind::kInt || a[1]->i < 0 ||
        !int_tuple(a[2], sizes) || !int_tuple(a[3], strides) || sizes.size() != strides.size()) {
      fail("_rebuild_tensor_v2 arguments are not (storage, offset, sizes, strides, ...)");
    }
    const at::ScalarType dtype = a[0]->dtype;
    const c10::Storage& storage = a[0]->storage;
    const uint64_t elems = storage.nbytes() / c10::elementSize(dtype);
    const uint64_t offset = static_cast<uint64_t>(a[1]->i);
    bool empty = false;
    for (int64_t s : sizes) empty = empty || s == 0;
    uint64_t last = offset;  // index of the last element the view touches
    bool overflow = false;
    uint64_t numel = 1;
    for (size_t d = 0; d < sizes.size(); ++d) {
      uint64_t span = 0;
      overflow |= __builtin_mul_overflow(static_cast<uint64_t>(sizes[d]), numel, &numel);
      if (!empty) {
        overflow |= __builtin_mul_overflow(static_cast<uint64_t>(sizes[d] - 1),
                                           static_cast<uint64_t>(strides[d]), &span);
        overflow |= __builtin_add_overflow(last, span, &last);
      }
    }
    if (overflow || (empty ? offset > elems : last >= elems) || numel > (uint64_t{1} << 62)) {
      fail(fmt::format(
          "tensor view (offset {}, sizes {}, strides {}) exceeds its storage of {} elements",
          offset, fmt::join(sizes, ","), fmt::join(strides, ","), elems));
    }
    if (dtype == at::kBool && !empty) {
      // Bytes other than 0 and 1 are not valid bools for the kernels that later read them.
      const auto* b = static_cast<const uint8_t*>(storage.data());
      for (size_t k = 0; k < storage.nbytes(); ++k) {
        if (b[k] > 1) fail(fmt::format("bool storage holds byte value {}", b[k]));
      }
    }
    Node* n = make(Kind::kTensor);
    try {
      n->tensor = at::empty({0}, at::TensorOptions().dtype(dtype));
      n->tensor.set_(storage, static_cast<int64_t>(offset), sizes, strides);
    } catch (const c10::Error& e) {
      fail(fmt::format("cannot build tensor: {}", e.what_without_backtrace()));
    }
    return n;
  }

  void count_expanded(uint64_t n) {
    expanded_ += n;
    if (expanded_ > kMaxExpandedObjects) {
      fail(fmt::format("shared containers expand to more than {} objects", kMaxExpandedObjects));
    }
  }

  c10::IValue to_ivalue(const Node* n, int depth) {
    if (depth > kMaxDepth) fail(fmt::format("containers nested deeper than {}", kMaxDepth));
    count_expanded(1);
    switch (n->kind) {
      case Kind::kNone: return c10::IValue();
      case Kind::kBool: return c10::IValue(n->i != 0);
      case Kind::kInt: return c10::IValue(n->i);
      case Kind::kFloat: return c10::IValue(n->f);
      case Kind::kStr: return c10::IValue(n->s);
      case Kind::kTensor: return c10::IValue(n->tensor);
      case Kind::kStorage: fail("a bare storage outside a tensor");
      case Kind::kGlobal: fail(fmt::format("a bare global {}", n->s));
      case Kind::kTuple:
      case Kind::kList:
      case Kind::kDict: break;
    }
    // Containers seen twice stay one object (a tuple is immutable, so a copy is equivalent).
    if (auto it = converted_.find(n); it != converted_.end()) {
      count_expanded(it->second.second - 1);
      return it->second.first;
    }
    if (!in_progress_.insert(n).second) fail("a container that contains itself");
    const uint64_t before = expanded_ - 1;
    c10::IValue out;
    if (n->kind == Kind::kDict) {
      out = to_dict(n, depth);
    } else if (n->kind == Kind::kList) {
      c10::impl::GenericList list(c10::AnyType::get());
      list.reserve(n->items.size());
      for (const Node* v : n->items) list.push_back(to_ivalue(v, depth + 1));
      out = c10::IValue(list);
    } else {
      std::vector<c10::IValue> elems;
      elems.reserve(n->items.size());
      for (const Node* v : n->items) elems.push_back(to_ivalue(v, depth + 1));
      out = c10::IValue(c10::ivalue::Tuple::create(std::move(elems)));
    }
    in_progress_.erase(n);
    converted_.emplace(n, std::make_pair(out, expanded_ - before));
    return out;
  }

  c10::IValue to_dict(const Node* n, int depth) {
    bool str_keys = true, int_keys = true;
    for (size_t k = 0; k < n->items.size(); k += 2) {
      str_keys = str_keys && n->items[k]->kind == Kind::kStr;
      int_keys = int_keys && n->items[k]->kind == Kind::kInt;
    }
    if (!str_keys && !int_keys) fail("a dict whose keys are not all str or all int");
    c10::impl::GenericDict dict(
        str_keys ? c10::TypePtr(c10::StringType::get()) : c10::TypePtr(c10::IntType::get()),
        c10::AnyType::get());
    for (size_t k = 0; k < n->items.size(); k += 2) {
      // A repeated key overwrites in place, as in Python.
      dict.insert_or_assign(to_ivalue(n->items[k], depth + 1),
                            to_ivalue(n->items[k + 1], depth + 1));
    }
    return c10::IValue(dict);
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  const StorageLoader& load_storage_;
  const std::string& path_;
  std::deque<Node> nodes_;
  std::vector<Node*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Node*> memo_;
  std::unordered_map<std::string, c10::Storage> storages_;
  std::unordered_map<const Node*, std::pair<c10::IValue, uint64_t>> converted_;  // with its size
  uint64_t expanded_ = 0;
  std::unordered_set<const Node*> in_progress_;
};

}  // namespace

c10::IValue unpickle_torch_save(const char* data, size_t size, const StorageLoader& load_storage,
                                const std::string& path_for_messages) {
  return TorchUnpickler(data, size, load_storage, path_for_messages).run();
}

}  // namespace runner::models::detail
