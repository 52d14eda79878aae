// The unlearning methods behind one interface (the list is unlearn/registry.h), plus `pretrain`
// (the native CLIP/MERU loss on every row) that `hac train` uses. A method maps the step's
// embeddings to a loss; the training loop (src/train) owns data, model and optimizer, so methods
// are pure tensor code.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "comm/comm.h"
#include "geometry/pair.h"

namespace runner::unlearn {

// Which rows of the train split a method's batches are drawn from.
enum class Rows { kAll, kRetain, kForget };

// What the loop must compute for a method beyond image and own-caption embeddings.
struct Needs {
  bool partners = false;   // forget rows' contrastive text is a random other forget row's caption
  bool reference = false;  // distances to the origin under the original (frozen) model
};

// One step's inputs: this rank's B rows (every rank the same B).
struct Features {
  at::Tensor image;     // [B, E] image embeddings (CLIP: L2-normalized; MERU: Lorentz space part)
  at::Tensor text;      // [B, E] text embeddings used by the contrastive term: own captions, and
                        // for forget rows the partner's caption when Needs::partners
  at::Tensor text_own;  // [B, E] embeddings of each row's own caption
  at::Tensor forget;    // [B] bool: the row belongs to the forget set
  // Under the original (frozen) model, when Needs::reference (set_reference): [B] f32 each. MERU:
  // distances to the origin of image and own caption, the pair's distance d_c and the caption's
  // cone half-aperture; CLIP: the pair's angle (the dist0 and aperture entries stay undefined).
  at::Tensor ref_image_dist0, ref_text_dist0, ref_pair_dist, ref_text_aperture;
  at::Tensor logit_scale;  // 0-dim, log of the contrastive scale
  at::Tensor curv;         // 0-dim curvature c (MERU), undefined for CLIP
  std::vector<at::Tensor> params;  // trainable parameters (l1)
};

struct Context {
  comm::CommPtr comm;
  geometry::Geometry geometry = geometry::Geometry::kLorentz;
  bool meru() const { return geometry == geometry::Geometry::kLorentz; }
  double beta_eff = 0.0;       // beta, scaled by |D_F| / (|D_R| + |D_F|) when beta_scaled
  double entail_weight = 0.2;  // MERU's entailment weight in the native loss
};

// A step's loss on this rank. The effective objective is the mean of `loss` over ranks (the
// gradient reducer averages), and every term is normalised by global counts, so any world size
// computes the single-process loss of the union of the batches. `parts` are detached 0-dim
// values with the same convention (their mean over ranks is the global value), for logging.
struct Terms {
  at::Tensor loss;
  std::vector<std::pair<std::string, at::Tensor>> parts;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  virtual Rows rows() const = 0;
  virtual Needs needs() const { return {}; }
  // false: the method does not train (`none` returns the original model unchanged).
  virtual bool trains() const { return true; }
  // true: start from random weights with the pretraining recipe (`retrain`).
  virtual bool from_scratch() const { return false; }
  virtual Terms loss(const Context& ctx, const Features& f) const = 0;
};

// The method named by cfg.method (unlearn/registry.h), with its weights and switches. A
// Lorentz-only method (`hac`) on a Euclidean model is a ConfigError; so is an unknown name.
std::unique_ptr<Method> make_method(const config::UnlearnConfig& cfg, geometry::Geometry g);
// The pretraining objective (CLIP: contrastive; MERU: + entail_weight * entailment), all rows.
std::unique_ptr<Method> make_pretrain_method();

// Fills f's ref_* entries from the original model's embeddings of the batch's images and own
// captions (no gradient flows into them); ref_curv: the original's curvature (MERU).
void set_reference(geometry::Geometry g, const at::Tensor& ref_image, const at::Tensor& ref_text,
                   const at::Tensor& ref_curv, Features& f);

// Whether the positive term's form (unlearn.pos_mode) reads the original's values: hinge_ref
// (its pair distances) and rescaled (its radii).
bool pos_needs_reference(const config::UnlearnConfig& cfg);

// beta_eff (AC's scaling of the positive term): beta * |D_F| / (|D_R| + |D_F|) when scaled, else beta.
double effective_beta(const config::UnlearnConfig& cfg, int64_t forget_size, int64_t retain_size);

}  // namespace runner::unlearn
