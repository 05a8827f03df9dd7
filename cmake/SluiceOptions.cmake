# Compiler flags shared by every sluice target, applied through the sluice_options interface.
add_library(sluice_options INTERFACE)
target_compile_features(sluice_options INTERFACE cxx_std_20)
target_compile_options(sluice_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough>)
# GCC 12 at -O3 reports false -Wrestrict overlaps inside std::string concatenation (GCC PR 105329).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(sluice_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Wno-restrict>)
endif()
if(SLUICE_WERROR)
  target_compile_options(sluice_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
endif()
if(SLUICE_SANITIZE)
  target_compile_options(sluice_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-omit-frame-pointer
      -fno-sanitize-recover=undefined>)
  target_link_options(sluice_options INTERFACE -fsanitize=address,undefined)
endif()
# Release-type builds tune for the build machine's ISA only when asked; the default stays
# portable so a binary built here runs on any x86-64 with AVX2.
set(SLUICE_ARCH_FLAGS "-mavx2;-mfma;-mf16c" CACHE STRING "Target ISA flags for CPU kernels")
target_compile_options(sluice_options INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${SLUICE_ARCH_FLAGS}>)
