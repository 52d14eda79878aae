// none: the original model, unchanged (the reference row of every table).
#include "core/error.h"
#include "unlearn/terms.h"

namespace runner::unlearn {

namespace {

class None final : public Method {
 public:
  std::string name() const override { return "none"; }
  Rows rows() const override { return Rows::kAll; }
  bool trains() const override { return false; }
  Terms loss(const Context&, const Features&) const override {
    throw Error("unlearn method 'none' does not train; the loop must not ask it for a loss");
  }
};

}  // namespace

std::unique_ptr<Method> make_none(const config::UnlearnConfig&) { return std::make_unique<None>(); }

}  // namespace runner::unlearn
