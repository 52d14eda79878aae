# runner_options: the INTERFACE target every hac library and test links for shared flags.
add_library(runner_options INTERFACE)
target_compile_features(runner_options INTERFACE cxx_std_17)
target_compile_options(runner_options INTERFACE -Wall -Wextra -Wpedantic -Wshadow=local
                                                -Wno-unused-parameter)
if(RUNNER_WERROR)
  target_compile_options(runner_options INTERFACE -Werror)
endif()
target_include_directories(runner_options INTERFACE ${PROJECT_SOURCE_DIR}/src)
# MPI's C++ bindings are deprecated and drag in warnings; only the C API is used.
target_compile_definitions(runner_options INTERFACE OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)

if(RUNNER_SANITIZE AND NOT RUNNER_SANITIZE STREQUAL "OFF")
  target_compile_options(runner_options INTERFACE -fsanitize=${RUNNER_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(runner_options INTERFACE -fsanitize=${RUNNER_SANITIZE})
endif()

# LibTorch's imported target carries -D_GLIBCXX_USE_CXX11_ABI and its include directories; its
# headers are system headers so our warning flags do not apply to them.
add_library(runner_torch INTERFACE)
target_link_libraries(runner_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(runner_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
