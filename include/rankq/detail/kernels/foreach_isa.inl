// rankq/detail/kernels/foreach_isa.inl — compiles the driver file named by RANKQ_DRIVER_FILE once per instruction
// set this build compiles (Highway's foreach_target idea): each copy lives in that set's namespace below
// rankq::detail (scalar, neon, neon_dotprod, avx2, avx_vnni, avx512), where the set's traits `Isa` are, and carries
// the set's target attribute on every function. Include after path_dispatch.hpp (which brings every Isa).
//
// No include guard on purpose: one inclusion per kernel family. RANKQ_DRIVER_FILE is undefined at the end.

#define RANKQ_DRIVER_NAMESPACE scalar
#define RANKQ_DRIVER_INLINE RANKQ_ALWAYS_INLINE
#define RANKQ_DRIVER_KERNEL inline
#include RANKQ_DRIVER_FILE

#if RANKQ_NEON_PATHS
#define RANKQ_DRIVER_NAMESPACE neon
#define RANKQ_DRIVER_INLINE RANKQ_ALWAYS_INLINE
#define RANKQ_DRIVER_KERNEL inline
#include RANKQ_DRIVER_FILE
#endif

#if RANKQ_NEON_DOTPROD_PATH
#define RANKQ_DRIVER_NAMESPACE neon_dotprod
#define RANKQ_DRIVER_INLINE RANKQ_ALWAYS_INLINE
#define RANKQ_DRIVER_KERNEL inline
#include RANKQ_DRIVER_FILE
#endif

#if RANKQ_X86_PATHS
#define RANKQ_DRIVER_NAMESPACE avx2
#define RANKQ_DRIVER_INLINE RANKQ_AVX2_INLINE
#define RANKQ_DRIVER_KERNEL RANKQ_AVX2_KERNEL
#include RANKQ_DRIVER_FILE

#define RANKQ_DRIVER_NAMESPACE avx_vnni
#define RANKQ_DRIVER_INLINE RANKQ_AVXVNNI_INLINE
#define RANKQ_DRIVER_KERNEL RANKQ_AVXVNNI_KERNEL
#include RANKQ_DRIVER_FILE

#define RANKQ_DRIVER_NAMESPACE avx512
#define RANKQ_DRIVER_INLINE RANKQ_AVX512_INLINE
#define RANKQ_DRIVER_KERNEL RANKQ_AVX512_KERNEL
#include RANKQ_DRIVER_FILE
#endif

#undef RANKQ_DRIVER_FILE
