// `hac checkpoint inspect`: the tensors of a torch.save file and the CLIP/MERU model they imply.
#include <ATen/ATen.h>
#include <fmt/format.h>

#include <cmath>
#include <unordered_map>

#include "core/error.h"
#include "models/checkpoint.h"
#include "models/contrastive_model.h"

namespace runner::models {
namespace {

struct TensorRow {
  std::string name;
  std::string shape;
  std::string dtype;
  uint64_t bytes;
};

// PyTorch's spelling (torch.float32), which is what people compare against in Python.
std::string dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return c10::toString(t);
  }
}

std::string shape_of(const at::Tensor& t) {
  return fmt::format("[{}]", fmt::join(t.sizes(), ", "));
}

std::string key_text(const c10::IValue& key) {
  return key.isString() ? key.toStringRef() : std::to_string(key.toInt());
}

// Every tensor under `v`, named by its path in the file ("model/visual.cls_token",
// "optimizer/state/0/exp_avg"). load_torch_file already bounded the nesting depth.
void collect_tensors(const c10::IValue& v, const std::string& where, std::vector<TensorRow>& rows) {
  auto child = [&](const std::string& part) { return where.empty() ? part : where + "/" + part; };
  if (v.isTensor()) {
    const at::Tensor& t = v.toTensor();
    rows.push_back({where.empty() ? "(top level)" : where, shape_of(t), dtype_name(t.scalar_type()),
                    static_cast<uint64_t>(t.numel()) * t.element_size()});
  } else if (v.isGenericDict()) {
    for (const auto& entry : v.toGenericDict())
      collect_tensors(entry.value(), child(key_text(entry.key())), rows);
  } else if (v.isList()) {
    const c10::List<c10::IValue> list = v.toList();
    for (size_t k = 0; k < list.size(); ++k)
      collect_tensors(list.get(k), child(std::to_string(k)), rows);
  } else if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    for (size_t k = 0; k < elems.size(); ++k)
      collect_tensors(elems[k], child(std::to_string(k)), rows);
  }
}

std::string exp_of_scalar(const NamedTensors& sd, const std::string& name) {
  for (const auto& [n, t] : sd) {
    if (n != name) continue;
    if (t.numel() != 1 || !at::isFloatingType(t.scalar_type())) return "n/a";
    const double v = t.item().toDouble();
    return fmt::format("{:.6g} (stored log value {:.6g})", std::exp(v), v);
  }
  return "n/a";
}

// The architecture comes from infer_model_options, the same reading load_pretrained uses, so
// what inspect prints is what loading builds.
std::string describe_model(const NamedTensors& sd, const std::string& path) {
  uint64_t values = 0;
  for (const auto& entry : sd) values += static_cast<uint64_t>(entry.second.numel());
  ModelOptions o;
  try {
    o = infer_model_options(sd, path);
  } catch (const IoError& e) {
    return fmt::format("model: unrecognised ({} tensors, {} values): {}\n", sd.size(), values, e.what());
  }
  const bool meru = o.kind == geometry::Geometry::kLorentz;
  const VitOptions& v = o.vision;
  const TextOptions& t = o.text;
  std::string out = fmt::format("model: {} ({} tensors, {} values)\n", meru ? "MERU" : "CLIP", sd.size(), values);
  out += fmt::format("  image encoder: ViT width {}, depth {}, heads {} (guess), patch {}, image size {} "
                     "({}x{} patches of {}), {} input channels\n",
                     v.width, v.depth, v.heads, v.patch_size, v.image_size, v.grid(), v.grid(),
                     v.patch_size, v.channels);
  out += fmt::format("  text encoder: transformer width {}, depth {}, heads {} (guess), vocab {}, context {}\n",
                     t.width, t.depth, t.heads, t.vocab_size, t.context_length);
  out += fmt::format("  embed dim: {}\n", o.embed_dim);
  if (meru) {
    out += fmt::format("  curvature exp(curv): {}\n", exp_of_scalar(sd, "curv"));
    out += fmt::format("  visual alpha exp(visual_alpha): {}\n", exp_of_scalar(sd, "visual_alpha"));
    out += fmt::format("  textual alpha exp(textual_alpha): {}\n", exp_of_scalar(sd, "textual_alpha"));
  }
  out += fmt::format("  logit scale exp(logit_scale): {}\n", exp_of_scalar(sd, "logit_scale"));
  return out;
}

}  // namespace

std::string describe_checkpoint(const std::string& path) {
  const c10::IValue value = load_torch_file(path);
  std::vector<TensorRow> rows;
  collect_tensors(value, "", rows);
  size_t name_width = 4, shape_width = 5;
  uint64_t bytes = 0;
  for (const TensorRow& r : rows) {
    name_width = std::max(name_width, std::min<size_t>(r.name.size(), 72));
    shape_width = std::max(shape_width, r.shape.size());
    bytes += r.bytes;
  }
  std::string out = fmt::format("{}: {} tensors, {:.2f} MiB\n", path, rows.size(),
                                static_cast<double>(bytes) / (1 << 20));
  for (const TensorRow& r : rows) {
    out += fmt::format("  {:<{}}  {:<{}}  {}\n", r.name, name_width, r.shape, shape_width, r.dtype);
  }
  try {
    out += describe_model(state_dict_of(value, path), path);
  } catch (const IoError& e) {
    out += fmt::format("model: none, this file holds no model weights ({})\n", e.what());
  }
  return out;
}

}  // namespace runner::models
