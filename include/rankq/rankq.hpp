// rankq/rankq.hpp — umbrella header for engines: every public header of the three bottom layers, which need
// nothing but the standard library (docs/kernels.md §9):
//   formats/  what stored weights and activations mean, and their encoders (uniform, MXINT, codebook, low-rank);
//   kernels/  the scalar references and the packed W4A8 / codebook / low-rank kernels, paths, threads, workspace;
//   layers/   prepared layers (rankq::Linear) that own or view packed weights and run forward.
// The quantization algorithms (rankq/algorithms/*.hpp: LCQ, LQER, GPTQ, calibration, SVD; most need Eigen) and
// the file readers and writers (rankq/io/*.hpp) are included on their own.
#pragma once

#include "rankq/error.hpp"
#include "rankq/version.hpp"

#include "rankq/formats/activation.hpp"
#include "rankq/formats/codebook.hpp"
#include "rankq/formats/half.hpp"
#include "rankq/formats/lowrank.hpp"
#include "rankq/formats/matrix.hpp"
#include "rankq/formats/mxint.hpp"
#include "rankq/formats/uniform.hpp"

#include "rankq/kernels/codebook_kernel.hpp"
#include "rankq/kernels/codebook_reference.hpp"
#include "rankq/kernels/kernel_path.hpp"
#include "rankq/kernels/lowrank_kernel.hpp"
#include "rankq/kernels/lowrank_reference.hpp"
#include "rankq/kernels/packed_activations.hpp"
#include "rankq/kernels/reference.hpp"
#include "rankq/kernels/threading.hpp"
#include "rankq/kernels/w4a8.hpp"
#include "rankq/kernels/w8a8_kernel.hpp"
#include "rankq/kernels/workspace.hpp"

#include "rankq/layers/linear.hpp"
