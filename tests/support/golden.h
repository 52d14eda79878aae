// Test support: reads a golden file of tests/golden (a zip-format torch.save of a plain dict of
// tensors, written by the reference MERU code) and looks tensors up by key.
#pragma once

#include <torch/csrc/jit/serialization/pickle.h>

#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace runner::testing {

class Golden {
 public:
  explicit Golden(const std::string& file) : path_(std::string(RUNNER_GOLDEN_DIR) + "/" + file) {
    std::ifstream in(path_, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open golden file " + path_);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    c10::IValue v = torch::jit::pickle_load(bytes);
    if (!v.isGenericDict()) throw std::runtime_error(path_ + " is not a dict");
    dict_ = v.toGenericDict();
  }
  at::Tensor operator[](const std::string& key) const {
    auto it = dict_.find(key);
    if (it == dict_.end()) throw std::runtime_error("golden " + path_ + " has no key " + key);
    return it->value().toTensor();
  }
  c10::IValue value(const std::string& key) const {
    auto it = dict_.find(key);
    if (it == dict_.end()) throw std::runtime_error("golden " + path_ + " has no key " + key);
    return it->value();
  }
  bool contains(const std::string& key) const { return dict_.find(key) != dict_.end(); }
  const c10::impl::GenericDict& dict() const { return dict_; }

 private:
  std::string path_;
  c10::impl::GenericDict dict_{c10::StringType::get(), c10::AnyType::get()};
};

// max |a - b| / (atol + rtol |b|) <= 1, with the worst offender in the message.
inline ::testing::AssertionResult close(const at::Tensor& a, const at::Tensor& b, double rtol,
                                        double atol) {
  if (a.sizes() != b.sizes()) {
    return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  }
  at::Tensor ad = a.detach().to(at::kDouble), bd = b.detach().to(at::kDouble);
  at::Tensor ratio = (ad - bd).abs() / (atol + rtol * bd.abs());
  if (ratio.numel() == 0) return ::testing::AssertionSuccess();
  if (!at::isfinite(ad).all().item<bool>() && !ad.equal(bd)) {
    return ::testing::AssertionFailure() << "non-finite values";
  }
  const int64_t worst = ratio.flatten().argmax().item<int64_t>();
  if (ratio.flatten()[worst].item<double>() <= 1.0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "element " << worst << ": " << ad.flatten()[worst].item<double>() << " vs "
         << bd.flatten()[worst].item<double>() << " (rtol " << rtol << ", atol " << atol
         << "), max |diff| " << (ad - bd).abs().max().item<double>();
}

}  // namespace runner::testing
