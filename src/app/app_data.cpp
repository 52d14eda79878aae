// `hac data fashion-mnist` (build the embedded default dataset) and `hac data info FILE`.
#include <CLI/CLI.hpp>

#include <iostream>

#include "app/app.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/convert.h"
#include "data/image_import.h"

namespace runner::app {

void add_data(CLI::App& app, Action& action) {
  auto* data = app.add_subcommand("data", "Build and inspect HDF5 image-text datasets");
  data->require_subcommand(1);

  auto fm = std::make_shared<data::FashionMnistOptions>();
  auto* build = data->add_subcommand("fashion-mnist", "Fashion-MNIST as an image-text dataset with a concept hierarchy");
  build->add_option("--out", fm->out, "Output HDF5 file")->required();
  build->add_option("--source", fm->source_dir, "Folder with the four IDX .gz files")->capture_default_str();
  build->add_option("--seed", fm->seed, "Seed of the captions and subsets")->capture_default_str();
  build->add_option("--train", fm->max_train, "Keep this many training rows, class-balanced (0 = all)");
  build->add_option("--test", fm->max_test, "Keep this many test rows, class-balanced (0 = all)");
  build->callback([&action, fm] {
    action = [fm] {
      data::build_fashion_mnist(*fm);
      return 0;
    };
  });

  auto imp = std::make_shared<data::ImportOptions>();
  auto* import = data->add_subcommand(
      "import", "Folders or WebDataset tars of JPEG/PNG images with captions as an image-text dataset");
  import->add_option("--out", imp->out, "Output HDF5 file")->required();
  import->add_option("--size", imp->size, "Side of the square images: shorter side resized, then center-cropped")
      ->required();
  import->add_option("--channels", imp->channels, "3 (RGB) or 1 (grey, Rec.601 luma)")->capture_default_str();
  import->add_option("--test-fraction", imp->test_fraction, "Fraction of samples in the test split (by key hash)")
      ->capture_default_str();
  import->add_option("--seed", imp->seed, "Seed of the train/test split")->capture_default_str();
  import->add_option("--concept-field", imp->concept_field, "Field of <key>.json that names the concept")
      ->capture_default_str();
  import->add_option("--parents", imp->parents_file, "Concept hierarchy: lines 'child<TAB>parent'");
  import->add_option("--layout", imp->layout,
                     "samples (<key>.jpg + <key>.txt/.json/.cls) | imagefolder (<class>/<name>.jpg; captions from "
                     "--template unless <key>.txt exists)")
      ->capture_default_str();
  import->add_option("--template", imp->templates, "imagefolder: caption template(s), {} = the class's display name")
      ->capture_default_str();
  import->add_option("--display-names", imp->display_names_file,
                     "Lines 'concept<TAB>display name': the words prompts use (/concept_display_names)");
  import->add_option("--storage", imp->storage,
                     "pixels (decoded rows, fastest to read) | jpeg (encoded bytes, ~7x smaller at 224 px, decoded by the "
                     "loader; allows data.augment random_resized_crop on the stored, larger image)")
      ->capture_default_str();
  import->add_option("--jpeg-max-side", imp->jpeg_max_side,
                     "jpeg: shorter side kept at most (larger images shrunk and re-encoded; 0 = size * 8/7)")
      ->capture_default_str();
  import->add_option("--jpeg-quality", imp->jpeg_quality, "jpeg: quality of re-encoded images")->capture_default_str();
  import->add_option("--threads", imp->threads, "Decoding threads (0 = the machine's cores, at most 16)")
      ->capture_default_str();
  import->add_option("SOURCE", imp->sources, "Folders or .tar files (plain or gzip/xz/zstd-compressed) of <key>.jpg|png + <key>.txt")
      ->required();
  import->callback([&action, imp] {
    action = [imp] {
      data::import_images(*imp);
      return 0;
    };
  });

  auto conv = std::make_shared<data::ConvertOptions>();
  auto* convert = data->add_subcommand(
      "convert", "Rewrite a dataset with the other image storage (pixels <-> jpeg), every row and table kept");
  convert->add_option("IN", conv->in, "Dataset file to read")->required();
  convert->add_option("--out", conv->out, "Output HDF5 file")->required();
  convert->add_option("--storage", conv->storage, "Storage of the output: pixels | jpeg")->capture_default_str();
  convert->add_option("--jpeg-quality", conv->jpeg_quality, "jpeg: quality of the encoded rows")->capture_default_str();
  convert->add_option("--threads", conv->threads, "Encode/decode threads (0 = the machine's cores)")->capture_default_str();
  convert->callback([&action, conv] {
    action = [conv] {
      data::convert_dataset(*conv);
      return 0;
    };
  });

  auto file = std::make_shared<std::string>();
  auto* info = data->add_subcommand("info", "Counts per split and concept, image shape, the hierarchy");
  info->add_option("FILE", *file, "Dataset file")->required();
  info->callback([&action, file] {
    action = [file] {
      std::cout << data::describe_dataset(*data::DatasetFile::open(*file));
      return 0;
    };
  });
}

}  // namespace runner::app
