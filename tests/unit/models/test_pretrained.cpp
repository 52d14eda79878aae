// load_pretrained on files in the released MERU/CLIP layout written by Python's torch.save
// (the checkpoint_python fixture): the architecture is read off the weights, every tensor lands
// in the model bitwise, and the model runs.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cstdlib>
#include <map>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/pretrained.h"

namespace runner::models {
namespace {

std::string fixture(const std::string& name) {
  const char* dir = std::getenv("HAC_CHECKPOINT_FIXTURES");
  if (dir == nullptr || *dir == '\0') throw std::runtime_error("HAC_CHECKPOINT_FIXTURES is not set: run through ctest");
  return std::string(dir) + "/" + name;
}

TEST(PretrainedFromPython, MeruAndClipLoadCompletelyAndRun) {
  for (const char* name : {"meru_like.pt", "clip_like.pt"}) {
    const std::string path = fixture(name);
    Pretrained p = load_pretrained(path);
    EXPECT_TRUE(p.report.complete()) << p.report.summary();
    EXPECT_EQ(p.options.kind, std::string(name) == "meru_like.pt" ? ModelKind::kMeru : ModelKind::kClip);
    std::map<std::string, at::Tensor> mine;
    for (auto& [n, t] : named_state(*p.model)) mine.emplace(n, t);
    const NamedTensors file = state_dict_of(load_torch_file(path), path);
    ASSERT_EQ(file.size(), mine.size());
    for (const auto& [n, t] : file) EXPECT_TRUE(mine.at(n).equal(t.to(mine.at(n).dtype()))) << name << ": " << n;
    const auto& v = p.options.vision;
    torch::NoGradGuard no_grad;
    at::Tensor img = p.model->encode_image(torch::rand({2, v.channels, v.image_size, v.image_size}));
    at::Tensor txt = p.model->encode_text(torch::randint(1, p.options.text.vocab_size - 1, {2, 5}, torch::kLong));
    EXPECT_EQ(img.size(1), p.options.embed_dim);
    EXPECT_TRUE(torch::isfinite(p.model->similarity(img, txt)).all().item<bool>());
  }
}

TEST(PretrainedFromPython, WrongHeadsOverrideStillLoadsButMustDivide) {
  EXPECT_THROW(load_pretrained(fixture("meru_like.pt"), false, /*vision_heads=*/7), ConfigError);
  EXPECT_NO_THROW(load_pretrained(fixture("meru_like.pt"), false, /*vision_heads=*/4));
}

}  // namespace
}  // namespace runner::models
