# Every third-party dependency is found here, from Debian's packages; nothing is downloaded.
find_package(Threads REQUIRED)
find_package(absl REQUIRED)
find_package(Protobuf REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)

# CUDA and NCCL are optional accelerators: detected, never required.
set(SILK_HAVE_CUDA OFF)
if(SILK_WITH_CUDA)
  find_package(CUDAToolkit QUIET)
  find_library(SILK_NCCL_LIBRARY nccl HINTS /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu)
  if(CUDAToolkit_FOUND AND SILK_NCCL_LIBRARY)
    set(SILK_HAVE_CUDA ON)
  endif()
endif()
message(STATUS "Silk: CUDA/NCCL support ${SILK_HAVE_CUDA}")

if(SILK_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(SILK_BUILD_EXAMPLES OR SILK_BUILD_TESTS)
  find_package(benchmark QUIET)
endif()
