// Checkpoint test helpers: temp files, tree flattening, bitwise comparison, re-zipping records.
#pragma once

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "models/checkpoint.h"

namespace runner::models::test {

// The small released-layout file `gen_checkpoint_fixtures.py --tiny` wrote; named .pt.bin because
// the repository ignores *.pt outside tests/golden.
inline std::string tiny_released_path() {
  return std::string(RUNNER_CHECKPOINT_TEST_DATA) + "/released_layout_tiny.pt.bin";
}

// A fresh directory under the test temp dir, one per call.
inline std::string make_temp_dir() {
  std::string tmpl = testing::TempDir() + "hac_ckpt_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  return tmpl;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
}

// Every tensor of a tree with its path: dict keys and list/tuple indices joined by "/", the
// naming gen_checkpoint_fixtures.py uses for its side files.
inline void flatten(const c10::IValue& v, const std::string& prefix, NamedTensors& out) {
  auto child = [&](const std::string& part) { return prefix.empty() ? part : prefix + "/" + part; };
  if (v.isTensor()) {
    out.emplace_back(prefix, v.toTensor());
  } else if (v.isGenericDict()) {
    for (const auto& e : v.toGenericDict()) {
      flatten(e.value(),
              child(e.key().isString() ? e.key().toStringRef() : std::to_string(e.key().toInt())),
              out);
    }
  } else if (v.isList()) {
    const auto list = v.toList();
    for (size_t k = 0; k < list.size(); ++k) flatten(list.get(k), child(std::to_string(k)), out);
  } else if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    for (size_t k = 0; k < elems.size(); ++k) flatten(elems[k], child(std::to_string(k)), out);
  }
}

inline NamedTensors flatten(const c10::IValue& v) {
  NamedTensors out;
  flatten(v, "", out);
  return out;
}

// Same dtype, shape and bytes (so NaN payloads and -0.0 count; strides may differ).
inline bool bitwise_equal(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(),
                     static_cast<size_t>(ca.numel()) * ca.element_size()) == 0;
}

// The records of a zip-format file (names below the archive folder) in archive order.
inline std::vector<std::pair<std::string, std::string>> read_records(const std::string& path) {
  caffe2::serialize::PyTorchStreamReader reader(path);
  std::vector<std::pair<std::string, std::string>> records;
  for (const std::string& name : reader.getAllRecords()) {
    auto [ptr, n] = reader.getRecord(name);
    records.emplace_back(name, std::string(static_cast<const char*>(ptr.get()), n));
  }
  return records;
}

// A well-formed archive holding `records`, as LibTorch's writer lays it out.
inline std::string write_records(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, size_t n) {
      out.append(static_cast<const char*>(data), n);
      return n;
    });
    for (const auto& [name, bytes] : records) {
      // The writer adds the version record itself and refuses a second one.
      if (name != "version" && name != ".data/version")
        writer.writeRecord(name, bytes.data(), bytes.size());
    }
    writer.writeEndOfFile();
  }
  return out;
}

inline c10::impl::GenericDict str_dict() {
  return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get());
}

// A tree with every kind save_torch_file writes; check_cpp_written.py checks the same values.
inline c10::IValue make_zoo() {
  const at::Tensor a = at::arange(6, at::kFloat).reshape({2, 3});
  auto top = str_dict();
  top.insert("a", a);
  top.insert("a_t", a.t());
  top.insert("a_row", a.select(0, 1));
  top.insert("half", at::tensor({0.5, -1.0, 65504.0}).to(at::kHalf));
  top.insert("bfloat16", at::linspace(-2, 2, 5).to(at::kBFloat16));
  top.insert("double", at::tensor({M_PI, -0.0}, at::kDouble));
  top.insert("int64", at::tensor({-(int64_t{1} << 62), int64_t{0}, int64_t{1} << 62}, at::kLong));
  top.insert("int32", at::tensor({-5, 7}, at::kInt));
  top.insert("int16", at::tensor({-300, 300}, at::kInt).to(at::kShort));
  top.insert("int8", at::tensor({-128, 127}, at::kInt).to(at::kChar));
  top.insert("uint8", at::tensor({0, 255}, at::kInt).to(at::kByte));
  top.insert("bool", at::tensor({1, 0, 1}, at::kInt).to(at::kBool));
  top.insert("scalar", at::scalar_tensor(2.5));
  top.insert("empty", at::zeros({0, 3}));
  top.insert("int", int64_t{42});
  top.insert("neg", int64_t{-7});
  top.insert("big", int64_t{1} << 40);
  top.insert("float", 0.25);
  top.insert("str", std::string("h\xc3\xa9llo \xe2\x9c\x93"));
  top.insert("none", c10::IValue());
  top.insert("true", true);
  top.insert("false", false);
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(int64_t{1});
  list.push_back(std::string("x"));
  list.push_back(2.5);
  top.insert("list", list);
  top.insert("int_list", std::vector<int64_t>{3, 4});  // a typed list: written as a plain list
  top.insert("tuple", c10::ivalue::Tuple::create({int64_t{1}, std::string("two")}));
  auto inner = str_dict();
  inner.insert("t", at::ones({2}));
  auto nested = str_dict();
  nested.insert("k", inner);
  top.insert("nested", nested);
  c10::impl::GenericDict int_keys(c10::IntType::get(), c10::AnyType::get());
  int_keys.insert(int64_t{0}, at::zeros({1}));
  int_keys.insert(int64_t{5}, at::ones({1}));
  top.insert("int_keys", int_keys);
  top.insert("empty_dict", str_dict());
  top.insert("empty_list", c10::impl::GenericList(c10::AnyType::get()));
  return c10::IValue(top);
}

}  // namespace runner::models::test
