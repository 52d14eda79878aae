// `hac checkpoint inspect FILE`: lists a torch.save file's tensors and the model they imply.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "app/app.h"
#include "models/checkpoint.h"

namespace runner::app {

void add_checkpoint(CLI::App& app, Action& action) {
  auto* checkpoint = app.add_subcommand("checkpoint", "Checkpoint tools (inspect)");
  checkpoint->require_subcommand(1);
  auto file = std::make_shared<std::string>();
  auto* inspect = checkpoint->add_subcommand(
      "inspect",
      "Print every tensor of a torch.save file (released MERU/CLIP, hac checkpoint) and its model");
  inspect->add_option("file", *file, "The .pt/.pth file")->required();
  inspect->callback([&action, file] {
    action = [file] {
      std::cout << models::describe_checkpoint(*file) << std::flush;
      return 0;
    };
  });
}

}  // namespace runner::app
