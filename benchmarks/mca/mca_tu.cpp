// The translation unit scripts/mca-report.sh compiles to assembly: one call of w4a8_gemm instantiates the W4A8
// driver on every path compiled for the target (x86-64: scalar, avx2, avx_vnni, avx512vnni; AArch64: neon,
// neon_dotprod), whose inner loops scripts/mca_loops.py hands to llvm-mca.
#include <rankq/kernels/w4a8.hpp>

void mca_call(const rankq::QuantizedActivations& x, const rankq::PackedW4& w, rankq::MatrixView<float> y,
              rankq::KernelPath path) {
  rankq::W4A8Options o;
  o.path = path;
  rankq::w4a8_gemm(x, w, y, o);
}
