// Checkpoint I/O tests: goldens, round trips, errors, describe, files exchanged with Python.
// Suites PythonFixture and PythonWriter run only as the CTest fixtures of tests/CMakeLists.txt.
#include <torch/csrc/jit/serialization/pickle.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "checkpoint_test_util.h"
#include "core/error.h"

namespace runner::models::test {
namespace {

const std::string kGolden = RUNNER_GOLDEN_DIR;
const std::string kTinyReleased = tiny_released_path();

c10::IValue pickle_load_file(const std::string& path) {
  const std::string bytes = read_bytes(path);
  return torch::jit::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
}

// The line of a describe_checkpoint listing that names `tensor`.
std::string line_of(const std::string& text, const std::string& tensor) {
  const size_t at = text.find("  " + tensor + " ");
  if (at == std::string::npos) return "(no line for " + tensor + ")";
  return text.substr(at, text.find('\n', at) - at);
}

// exp() of a scalar weight as describe_checkpoint prints it (6 significant digits).
std::string exp_text(const NamedTensors& sd, const std::string& name) {
  for (const auto& [n, t] : sd) {
    if (n == name) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", std::exp(t.item<double>()));
      return buf;
    }
  }
  return "(no " + name + ")";
}

template <typename F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no IoError thrown)";
}

// (a) Goldens: the reader agrees bitwise, in order, with LibTorch's own reader on plain dicts.
TEST(CheckpointGolden, MatchesLibTorchPickleLoad) {
  for (const char* name : {"meru_losses.pt", "meru_text_encoder.pt", "meru_lorentz.pt"}) {
    const std::string path = kGolden + "/" + name;
    const NamedTensors got = flatten(load_torch_file(path));
    const NamedTensors want = flatten(pickle_load_file(path));
    ASSERT_EQ(got.size(), want.size()) << path;
    for (size_t k = 0; k < got.size(); ++k) {
      EXPECT_EQ(got[k].first, want[k].first) << path;
      EXPECT_TRUE(bitwise_equal(got[k].second, want[k].second)) << path << " " << got[k].first;
    }
  }
}

TEST(CheckpointGolden, MeruLossesShapes) {
  const c10::IValue v = load_torch_file(kGolden + "/meru_losses.pt");
  const NamedTensors sd = state_dict_of(v, "meru_losses.pt");
  ASSERT_FALSE(sd.empty());
  EXPECT_EQ(sd[0].first, "img_feats");
  EXPECT_EQ(sd[0].second.scalar_type(), at::kFloat);
  EXPECT_EQ(sd[0].second.sizes(), (at::IntArrayRef{8, 16}));
  const at::Tensor scale = v.toGenericDict().at("logit_scale").toTensor();
  EXPECT_EQ(scale.dim(), 0);
}

TEST(CheckpointGolden, TextEncoderStateDict) {
  const c10::IValue v = load_torch_file(kGolden + "/meru_text_encoder.pt");
  const auto d = v.toGenericDict();
  const at::Tensor mask = d.at("textual.attn_mask").toTensor();
  EXPECT_EQ(mask.scalar_type(), at::kBool);
  EXPECT_TRUE(at::equal(mask, at::ones({16, 16}, at::kBool).triu(1)));
  EXPECT_EQ(d.at("tokens").toTensor().scalar_type(), at::kLong);
  EXPECT_EQ(d.at("textual.resblocks.1.attn.in_proj_weight").toTensor().sizes(),
            (at::IntArrayRef{192, 64}));
}

// The released layout (OrderedDict + BUILD(_metadata), AdamW state with int keys, scheduler,
// empty scaler dict), from the small file gen_checkpoint_fixtures.py --tiny wrote.
TEST(CheckpointReleased, TinyReleasedLayout) {
  const c10::IValue v = load_torch_file(kTinyReleased);
  const auto top = v.toGenericDict();
  std::vector<std::string> keys;
  for (const auto& e : top) keys.push_back(e.key().toStringRef());
  EXPECT_EQ(keys, (std::vector<std::string>{"model", "optimizer", "scheduler", "scaler"}));
  const NamedTensors sd = state_dict_of(v, kTinyReleased);
  ASSERT_GE(sd.size(), 10u);
  EXPECT_EQ(sd[0].first, "logit_scale");
  EXPECT_EQ(sd[1].first, "curv");
  const auto state = top.at("optimizer").toGenericDict().at("state").toGenericDict();
  EXPECT_TRUE(state.keyType()->kind() == c10::TypeKind::IntType);
  EXPECT_TRUE(state.at(0).toGenericDict().at("exp_avg").isTensor());
  EXPECT_TRUE(top.at("scaler").toGenericDict().empty());
  const Checkpoint ckpt = load_checkpoint(kTinyReleased);
  EXPECT_EQ(ckpt.step, 0);
  EXPECT_EQ(ckpt.model.size(), sd.size());
  EXPECT_TRUE(ckpt.optimizer.empty());
}

// (c) save_torch_file -> load_torch_file keeps values, order, views and shared storage.
TEST(CheckpointRoundTrip, TorchFile) {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/zoo.pt";
  const c10::IValue zoo = make_zoo();
  save_torch_file(path, zoo);
  const c10::IValue got = load_torch_file(path);
  const NamedTensors want_t = flatten(zoo), got_t = flatten(got);
  ASSERT_EQ(got_t.size(), want_t.size());
  for (size_t k = 0; k < got_t.size(); ++k) {
    EXPECT_EQ(got_t[k].first, want_t[k].first);
    EXPECT_TRUE(bitwise_equal(got_t[k].second, want_t[k].second)) << got_t[k].first;
    EXPECT_EQ(got_t[k].second.strides(), want_t[k].second.strides()) << got_t[k].first;
    EXPECT_EQ(got_t[k].second.storage_offset(), want_t[k].second.storage_offset())
        << got_t[k].first;
  }
  const auto d = got.toGenericDict();
  EXPECT_TRUE(d.at("a_t").toTensor().is_alias_of(d.at("a").toTensor()));
  EXPECT_TRUE(d.at("a_row").toTensor().is_alias_of(d.at("a").toTensor()));
  EXPECT_EQ(d.at("int").toInt(), 42);
  EXPECT_EQ(d.at("neg").toInt(), -7);
  EXPECT_EQ(d.at("big").toInt(), int64_t{1} << 40);
  EXPECT_EQ(d.at("float").toDouble(), 0.25);
  EXPECT_EQ(d.at("str").toStringRef(), "h\xc3\xa9llo \xe2\x9c\x93");
  EXPECT_TRUE(d.at("none").isNone());
  EXPECT_TRUE(d.at("true").toBool());
  EXPECT_FALSE(d.at("false").toBool());
  const auto list = d.at("list").toList();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list.get(1).toStringRef(), "x");
  EXPECT_EQ(d.at("int_list").toList().get(1).toInt(), 4);
  EXPECT_EQ(d.at("tuple").toTupleRef().elements().at(1).toStringRef(), "two");
  EXPECT_TRUE(d.at("int_keys").toGenericDict().contains(int64_t{5}));
  EXPECT_TRUE(d.at("empty_dict").toGenericDict().empty());
  // Atomic write: nothing but the file is left behind, and a second save replaces it.
  save_torch_file(path, zoo);
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 1u);
  std::filesystem::remove_all(dir);
}

Checkpoint make_checkpoint() {
  Checkpoint c;
  c.model = {{"logit_scale", at::scalar_tensor(std::log(1 / 0.07), at::kFloat)},
             {"curv", at::scalar_tensor(0.0, at::kFloat)},
             {"visual.blocks.0.attn.qkv.weight", at::randn({12, 4})},
             {"textual.attn_mask", at::ones({3, 3}, at::kBool).triu(1)},
             {"pixel_mean", at::tensor({0.485, 0.456, 0.406}).view({3, 1, 1})}};
  c.optimizer = {{"visual.blocks.0.attn.qkv.weight.exp_avg", at::randn({12, 4})},
                 {"visual.blocks.0.attn.qkv.weight.exp_avg_sq", at::rand({12, 4})},
                 {"step", at::scalar_tensor(3.0)}};
  c.step = int64_t{1} << 33;
  c.rng_state = at::randint(0, 255, {5056}, at::kByte);
  c.config_yaml = "model:\n  arch: meru\n  name: \"h\xc3\xa9\"\n";
  c.extras = {{"tokenizer", std::string("a\0b", 3)}, {"note", "x"}};
  return c;
}

void expect_same(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k].first, b[k].first);
    EXPECT_TRUE(bitwise_equal(a[k].second, b[k].second)) << a[k].first;
  }
}

TEST(CheckpointRoundTrip, Checkpoint) {
  const std::string dir = make_temp_dir();
  const Checkpoint c = make_checkpoint();
  save_checkpoint(dir + "/c.pt", c);
  const Checkpoint got = load_checkpoint(dir + "/c.pt");
  expect_same(got.model, c.model);
  expect_same(got.optimizer, c.optimizer);
  EXPECT_EQ(got.step, c.step);
  ASSERT_TRUE(got.rng_state.defined());
  EXPECT_TRUE(bitwise_equal(got.rng_state, c.rng_state));
  EXPECT_EQ(got.config_yaml, c.config_yaml);
  EXPECT_EQ(got.extras, c.extras);
  // state_dict_of finds the model of hac's own files too.
  expect_same(state_dict_of(load_torch_file(dir + "/c.pt"), "c.pt"), c.model);
  // No generator state is fine.
  Checkpoint bare = c;
  bare.rng_state = at::Tensor();
  bare.optimizer.clear();
  save_checkpoint(dir + "/bare.pt", bare);
  const Checkpoint got_bare = load_checkpoint(dir + "/bare.pt");
  EXPECT_FALSE(got_bare.rng_state.defined());
  EXPECT_TRUE(got_bare.optimizer.empty());
  std::filesystem::remove_all(dir);
}

// Files hac wrote before its own pickler (LibTorch's pickle_save: restore_type_tag around every
// container, build_intlist for int lists) still read as the same checkpoint.
TEST(CheckpointRoundTrip, ReadsFilesOfLibTorchsPickleSave) {
  const std::string dir = make_temp_dir();
  const Checkpoint c = make_checkpoint();
  save_checkpoint(dir + "/new.pt", c);
  const c10::IValue tree = load_torch_file(dir + "/new.pt");
  const std::vector<char> bytes = torch::jit::pickle_save(tree);
  const std::string old_format(bytes.begin(), bytes.end());
  ASSERT_NE(old_format.find("restore_type_tag"), std::string::npos);
  write_bytes(dir + "/old.pt", old_format);
  const Checkpoint got = load_checkpoint(dir + "/old.pt");
  expect_same(got.model, c.model);
  expect_same(got.optimizer, c.optimizer);
  EXPECT_EQ(got.step, c.step);
  EXPECT_TRUE(bitwise_equal(got.rng_state, c.rng_state));
  EXPECT_EQ(got.config_yaml, c.config_yaml);
  EXPECT_EQ(got.extras, c.extras);
  // The new writer emits none of LibTorch's own globals.
  const std::string now = read_bytes(dir + "/new.pt");
  EXPECT_EQ(now.find("torch.jit"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A flipped byte inside a record's data is found by the record's CRC-32 and refused with the
// file and the record named, whatever the byte (a weight's value changes silently otherwise).
TEST(CheckpointIntegrity, AFlippedByteFailsItsRecordsCrc) {
  const std::string dir = make_temp_dir();
  const Checkpoint c = make_checkpoint();
  save_checkpoint(dir + "/c.pt", c);
  std::string bytes = read_bytes(dir + "/c.pt");
  // The first storage record's data: its name, then (after the local header's extra field) the bytes.
  const size_t name_at = bytes.find("/data/0");
  ASSERT_NE(name_at, std::string::npos);
  const size_t header = bytes.rfind(std::string("PK\x03\x04", 4), name_at);
  ASSERT_NE(header, std::string::npos);
  const auto le16 = [&](size_t at) {
    return static_cast<size_t>(static_cast<uint8_t>(bytes[at])) | static_cast<size_t>(static_cast<uint8_t>(bytes[at + 1])) << 8;
  };
  const size_t data_at = header + 30 + le16(header + 26) + le16(header + 28);
  bytes[data_at + 1] = static_cast<char>(bytes[data_at + 1] ^ 0x10);
  write_bytes(dir + "/flipped.pt", bytes);
  const std::string err = io_error_of([&] { load_checkpoint(dir + "/flipped.pt"); });
  EXPECT_NE(err.find(dir + "/flipped.pt"), std::string::npos) << err;
  EXPECT_NE(err.find("CRC-32"), std::string::npos) << err;
  EXPECT_NE(err.find("data/0"), std::string::npos) << err;
  std::filesystem::remove_all(dir);
}

TEST(CheckpointRoundTrip, RejectsBadInput) {
  const std::string dir = make_temp_dir();
  Checkpoint c = make_checkpoint();
  c.model.push_back(c.model[0]);
  EXPECT_NE(io_error_of([&] { save_checkpoint(dir + "/dup.pt", c); }).find("twice"),
            std::string::npos);
  c = make_checkpoint();
  c.rng_state = at::zeros({4}, at::kFloat);
  EXPECT_NE(io_error_of([&] { save_checkpoint(dir + "/rng.pt", c); }).find("uint8"),
            std::string::npos);
  auto d = str_dict();
  d.insert("t", at::Tensor());
  const std::string undefined = io_error_of([&] { save_torch_file(dir + "/u.pt", d); });
  EXPECT_NE(undefined.find(dir + "/u.pt: cannot save an undefined tensor at /t"), std::string::npos)
      << undefined;
  c10::impl::GenericDict float_keys(c10::FloatType::get(), c10::AnyType::get());
  float_keys.insert(1.5, int64_t{1});
  EXPECT_NE(io_error_of([&] { save_torch_file(dir + "/k.pt", float_keys); }).find("keys"),
            std::string::npos);
  EXPECT_NE(io_error_of([&] {
              save_torch_file(dir + "/s.pt", c10::IValue(c10::Device(c10::kCPU)));
            }).find("cannot save"),
            std::string::npos);
  const std::string missing_dir = dir + "/no/such/dir/x.pt";
  EXPECT_NE(io_error_of([&] { save_torch_file(missing_dir, make_zoo()); }).find(missing_dir),
            std::string::npos);
  // A file of another format version is refused, not misread.
  auto other = str_dict();
  other.insert("format", std::string("hac-checkpoint/99"));
  other.insert("model", str_dict());
  save_torch_file(dir + "/v99.pt", other);
  EXPECT_NE(io_error_of([&] { load_checkpoint(dir + "/v99.pt"); }).find("hac-checkpoint/99"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

// (f) Files that are not torch.save archives fail with the path in the message.
TEST(CheckpointErrors, NotATorchFile) {
  const std::string dir = make_temp_dir();
  const std::string text = dir + "/notes.txt", empty = dir + "/empty.pt",
                    missing = dir + "/missing.pt";
  write_bytes(text, "model: meru\nthis is not a checkpoint\n");
  write_bytes(empty, "");
  for (const std::string& p : {text, empty, missing, dir}) {
    const std::string msg = io_error_of([&] { load_torch_file(p); });
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
  }
  EXPECT_NE(io_error_of([&] { load_torch_file(empty); }).find("empty"), std::string::npos);
  EXPECT_NE(io_error_of([&] { load_torch_file(missing); }).find("no such file"), std::string::npos);
  // A zip without data.pkl (e.g. a TorchScript archive's cousin).
  const std::string zip = dir + "/other.zip";
  write_bytes(zip, write_records({{"weights.bin", "abcd"}}));
  EXPECT_NE(io_error_of([&] { load_torch_file(zip); }).find("data.pkl"), std::string::npos);
  EXPECT_NE(io_error_of([&] { load_checkpoint(text); }).find(text), std::string::npos);
  EXPECT_NE(io_error_of([&] { describe_checkpoint(missing); }).find(missing), std::string::npos);
  // A non-model file: state_dict_of names the file and what it holds.
  auto d = str_dict();
  d.insert("epoch", int64_t{3});
  save_torch_file(dir + "/meta.pt", d);
  const std::string msg =
      io_error_of([&] { state_dict_of(load_torch_file(dir + "/meta.pt"), "meta.pt"); });
  EXPECT_NE(msg.find("meta.pt"), std::string::npos);
  EXPECT_NE(msg.find("epoch"), std::string::npos);
  EXPECT_NE(describe_checkpoint(dir + "/meta.pt").find("no model weights"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// A hand-written pickle calling os.system, as a malicious checkpoint would.
TEST(CheckpointErrors, RefusesForeignGlobals) {
  const detail::StorageLoader no_storage = [](const std::string&, uint64_t) -> c10::Storage {
    throw IoError("no storages here");
  };
  for (const std::string& global :
       {std::string("posix\nsystem\n"), std::string("builtins\neval\n"),
        std::string("torch\nload\n"), std::string("collections\nCounter\n")}) {
    // GLOBAL <global>, then REDUCE it with the argument tuple ("ls",).
    const std::string pkl =
        std::string("\x80\x02") + 'c' + global + std::string("X\x02\0\0\0ls\x85R.", 10);
    const std::string msg = io_error_of(
        [&] { detail::unpickle_torch_save(pkl.data(), pkl.size(), no_storage, "evil.pt"); });
    std::string dotted = global.substr(0, global.size() - 1);
    dotted[dotted.find('\n')] = '.';
    EXPECT_NE(msg.find("refusing global " + dotted), std::string::npos) << msg;
    EXPECT_NE(msg.find("evil.pt"), std::string::npos) << msg;
  }
  // A list that contains itself, a tree that explodes when its sharing is expanded, and nesting
  // past the depth bound all fail cleanly.
  const std::string cycle("\x80\x02]q\0h\0a.", 9);
  EXPECT_NE(io_error_of([&] {
              detail::unpickle_torch_save(cycle.data(), cycle.size(), no_storage, "c.pt");
            }).find("contains itself"),
            std::string::npos);
  // 64 levels, each a list holding the level below twice: 2^64 objects once expanded.
  std::string doubling("\x80\x02]q\x00", 5);
  for (int level = 1; level <= 64; ++level) {
    const char prev = static_cast<char>(level - 1);
    doubling += std::string{']', 'q', static_cast<char>(level), '(', 'h', prev, 'h', prev, 'e'};
  }
  doubling += '.';
  EXPECT_NE(io_error_of([&] {
              detail::unpickle_torch_save(doubling.data(), doubling.size(), no_storage, "x.pt");
            }).find("expand to more than"),
            std::string::npos);
  const std::string deep = "\x80\x02" + std::string(100000, ']') + std::string(99999, 'a') + ".";
  EXPECT_NE(io_error_of([&] {
              detail::unpickle_torch_save(deep.data(), deep.size(), no_storage, "d.pt");
            }).find("deeper"),
            std::string::npos);
}

// (e) describe_checkpoint on the committed tiny MERU-like file.
TEST(CheckpointDescribe, TinyReleased) {
  const std::string text = describe_checkpoint(kTinyReleased);
  const NamedTensors sd = state_dict_of(load_torch_file(kTinyReleased), kTinyReleased);
  const std::string curv = "curvature exp(curv): " + exp_text(sd, "curv");
  for (const std::string& want :
       {std::string("model: MERU"), std::string("optimizer/state/0/exp_avg"),
        std::string("ViT width 4, depth 1"), std::string("patch 2, image size 4"),
        std::string("vocab 6, context 3"), std::string("embed dim: 2"), curv}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  const std::string qkv = line_of(text, "model/visual.blocks.0.attn.qkv.weight");
  EXPECT_TRUE(qkv.find("[12, 4] ") != std::string::npos &&
              qkv.find(" float32") != std::string::npos)
      << text;
  const std::string mask = line_of(text, "model/textual.attn_mask");
  EXPECT_TRUE(mask.find("[3, 3] ") != std::string::npos && mask.find(" bool") != std::string::npos)
      << text;
}

// ---- Tests run only by CTest fixtures (registered when Python's torch is available). ----

std::string env_dir(const char* var) {
  const char* v = std::getenv(var);
  return v == nullptr ? std::string() : std::string(v);
}

// Every tensor of `file` equals the side file's copy bitwise, in order, with the same strides
// and storage offset.
void expect_matches_side_file(const std::string& file, const std::string& expected_file) {
  SCOPED_TRACE(file);
  const NamedTensors got = flatten(load_torch_file(file));
  const auto want = pickle_load_file(expected_file).toGenericDict();
  std::vector<std::string> want_names, got_names;
  for (const auto& e : want) {
    if (e.key().toStringRef().find('#') == std::string::npos)
      want_names.push_back(e.key().toStringRef());
  }
  for (const auto& [name, t] : got) got_names.push_back(name);
  ASSERT_EQ(got_names, want_names);
  for (const auto& [name, t] : got) {
    EXPECT_TRUE(bitwise_equal(t, want.at(name).toTensor())) << name;
    const at::Tensor stride = want.at(name + "#stride").toTensor();
    EXPECT_EQ(t.strides(),
              at::IntArrayRef(stride.data_ptr<int64_t>(), static_cast<size_t>(stride.numel())))
        << name;
    EXPECT_EQ(t.storage_offset(), want.at(name + "#offset").toTensor().item<int64_t>()) << name;
  }
}

TEST(PythonFixture, ReleasedLayoutsBitwise) {
  const std::string dir = env_dir("HAC_CHECKPOINT_FIXTURES");
  ASSERT_FALSE(dir.empty()) << "HAC_CHECKPOINT_FIXTURES is not set: run through ctest";
  expect_matches_side_file(dir + "/meru_like.pt", dir + "/meru_like_expected.pt");
  expect_matches_side_file(dir + "/clip_like.pt", dir + "/clip_like_expected.pt");
  expect_matches_side_file(dir + "/meru_like_zip64.pt", dir + "/meru_like_expected.pt");
  const NamedTensors meru = state_dict_of(load_torch_file(dir + "/meru_like.pt"), "meru_like.pt");
  std::vector<std::string> first;
  for (size_t k = 0; k < 9; ++k) first.push_back(meru.at(k).first);
  EXPECT_EQ(first,
            (std::vector<std::string>{"logit_scale", "curv", "visual_alpha", "textual_alpha",
                                      "pixel_mean", "pixel_std", "visual.cls_token",
                                      "visual.pos_embed", "visual.patch_embed.proj.weight"}));
  const c10::IValue clip = load_torch_file(dir + "/clip_like.pt");
  EXPECT_EQ(clip.toGenericDict().at("root").toTensor().sizes(), (at::IntArrayRef{512}));
  const Checkpoint ckpt = load_checkpoint(dir + "/clip_like.pt");
  EXPECT_EQ(ckpt.step, 0);
  EXPECT_EQ(ckpt.model.front().first, "logit_scale");
}

TEST(PythonFixture, ViewsDtypesScalars) {
  const std::string dir = env_dir("HAC_CHECKPOINT_FIXTURES");
  ASSERT_FALSE(dir.empty()) << "HAC_CHECKPOINT_FIXTURES is not set: run through ctest";
  for (const char* name : {"views.pt", "views_protocol4.pt", "views_cuda.pt"}) {
    expect_matches_side_file(dir + "/" + name, dir + "/views_expected.pt");
    const auto d = load_torch_file(dir + "/" + name).toGenericDict();
    EXPECT_TRUE(d.at("float_t").toTensor().is_alias_of(d.at("float_base").toTensor())) << name;
    EXPECT_TRUE(d.at("float_slice").toTensor().is_alias_of(d.at("float_base").toTensor())) << name;
    const auto list = d.at("nested").toGenericDict().at("list").toList();
    ASSERT_EQ(list.size(), 9u);
    EXPECT_EQ(list.get(0).toInt(), 1);
    EXPECT_EQ(list.get(1).toInt(), -2);
    EXPECT_EQ(list.get(2).toDouble(), 3.25);
    EXPECT_EQ(list.get(3).toStringRef(), "text");
    EXPECT_TRUE(list.get(4).isNone());
    EXPECT_TRUE(list.get(5).toBool());
    EXPECT_FALSE(list.get(6).toBool());
    EXPECT_EQ(list.get(7).toInt(), int64_t{1} << 40);
    EXPECT_EQ(list.get(8).toInt(), -(int64_t{1} << 40));
    EXPECT_EQ(d.at("nested").toGenericDict().at("unicode").toStringRef(),
              "\xc3\xbcn\xc3\xaf"
              "code \xe2\x9c\x93");
    EXPECT_EQ(
        d.at("nested").toGenericDict().at("tuple").toTupleRef().elements().at(1).toStringRef(),
        "a");
    const auto ordered = d.at("ordered").toGenericDict();
    EXPECT_EQ(ordered.begin()->key().toStringRef(), "b");
    EXPECT_EQ(d.at("big").toInt(), int64_t{1} << 62);
    EXPECT_EQ(d.at("neg").toInt(), -1);
    EXPECT_EQ(d.at("float").toDouble(), -0.1);
    EXPECT_TRUE(d.at("empty_dict").toGenericDict().empty());
    EXPECT_EQ(d.at("empty_list").toList().size(), 0u);
    EXPECT_TRUE(d.at("int_keys").toGenericDict().contains(int64_t{7}));
  }
  const std::string foreign = dir + "/foreign_global.pt";
  const std::string msg = io_error_of([&] { load_torch_file(foreign); });
  EXPECT_NE(msg.find("collections.Counter"), std::string::npos) << msg;
  EXPECT_NE(msg.find(foreign), std::string::npos) << msg;
}

TEST(PythonFixture, DescribeMeruAndClip) {
  const std::string dir = env_dir("HAC_CHECKPOINT_FIXTURES");
  ASSERT_FALSE(dir.empty()) << "HAC_CHECKPOINT_FIXTURES is not set: run through ctest";
  const std::string meru = describe_checkpoint(dir + "/meru_like.pt");
  for (const char* want :
       {"model: MERU", "ViT width 64, depth 2, heads 1 (guess), patch 8, image size 32",
        "transformer width 64, depth 2, heads 1 (guess), vocab 100, context 8", "embed dim: 16",
        "optimizer/state/0/exp_avg_sq"}) {
    EXPECT_NE(meru.find(want), std::string::npos) << want << "\n" << meru;
  }
  const NamedTensors sd = state_dict_of(load_torch_file(dir + "/meru_like.pt"), "meru_like.pt");
  EXPECT_NE(meru.find("curvature exp(curv): " + exp_text(sd, "curv")), std::string::npos) << meru;
  EXPECT_NE(meru.find("logit scale exp(logit_scale): " + exp_text(sd, "logit_scale")),
            std::string::npos)
      << meru;
  EXPECT_NEAR(std::stod(exp_text(sd, "curv")), 0.7,
              0.01);  // the generator's curvature, one AdamW step later
  EXPECT_NE(line_of(meru, "model/visual.pos_embed").find("[1, 17, 64]"), std::string::npos) << meru;
  const std::string clip = describe_checkpoint(dir + "/clip_like.pt");
  for (const char* want :
       {"model: CLIP", "ViT width 64, depth 2", "vocab 100, context 8", "embed dim: 16"}) {
    EXPECT_NE(clip.find(want), std::string::npos) << want << "\n" << clip;
  }
  const std::string root = line_of(clip, "root");
  EXPECT_TRUE(root.find("[512] ") != std::string::npos &&
              root.find(" float32") != std::string::npos)
      << clip;
  EXPECT_EQ(clip.find("curvature"), std::string::npos);
}

// Writes files for check_cpp_written.py (Python's torch.load must read them).
TEST(PythonWriter, WritesFilesForPython) {
  const std::string dir = env_dir("HAC_CHECKPOINT_OUT");
  ASSERT_FALSE(dir.empty()) << "HAC_CHECKPOINT_OUT is not set: run through ctest";
  std::filesystem::create_directories(dir);
  save_torch_file(dir + "/zoo.pt", make_zoo());
  c10::impl::GenericDict no_float = make_zoo().toGenericDict();
  ASSERT_EQ(no_float.erase("float"), 1u);  // PyTorch 1.13's weights-only load has no BINFLOAT
  ASSERT_EQ(no_float.erase("list"), 1u);
  save_torch_file(dir + "/zoo_no_float.pt", no_float);
  Checkpoint c;
  c.model = {{"visual.cls_token", at::arange(8, at::kFloat).reshape({1, 2, 4})},
             {"textual.attn_mask", at::ones({3, 3}, at::kBool).triu(1)}};
  c.optimizer = {{"visual.cls_token.exp_avg", at::full({1, 2, 4}, 0.5)}};
  c.step = 1234;
  c.rng_state = at::arange(16, at::kInt).to(at::kByte);
  c.config_yaml = "seed: 1\n";
  c.extras = {{"tokenizer", "{\"vocab\": 3}"}};
  save_checkpoint(dir + "/checkpoint.pt", c);
}

}  // namespace
}  // namespace runner::models::test
