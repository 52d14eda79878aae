// Differentiable collectives: an all-gather whose backward sums gradients over ranks.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "comm/comm.h"

namespace runner::comm {

// [B, ...] on every rank -> [world*B, ...], rank-ordered, differentiable: the backward pass sums
// the incoming gradient over ranks and returns this rank's slice (what MERU and OpenCLIP rely
// on). Every rank must pass the same B (CommError on every rank otherwise). The graph holds a
// reference to `comm` until backward has run. Backward is a collective: every rank must use the
// result in the loss it differentiates. With world 1 the result is a differentiable copy.
at::Tensor all_gather_with_grad(const CommPtr& comm, const at::Tensor& x);

}  // namespace runner::comm
