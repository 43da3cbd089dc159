# Install rules: libsilk, its headers (under include/silk/, keeping the source
# layout, plus <silk/silk.h> for C), the CMake package (find_package(Silk),
# target Silk::silk) and a pkg-config file (silk.pc), and the programs.
include(CMakePackageConfigHelpers)

# The C++ headers need C++20 (defaulted comparisons): a consumer of Silk::silk
# compiles in C++20 whatever its own CMAKE_CXX_STANDARD says.
target_compile_features(silk PUBLIC cxx_std_20)

# A sanitized libsilk needs the sanitizers' runtimes in whatever links it.
set(SILK_PC_SANITIZER_LIBS "")
if(SILK_SANITIZE)
  target_link_options(silk INTERFACE $<INSTALL_INTERFACE:-fsanitize=address,undefined>)
  set(SILK_PC_SANITIZER_LIBS " -fsanitize=address,undefined")
endif()

install(TARGETS silk EXPORT SilkTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(DIRECTORY runtime collectives training
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk
  FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_BINARY_DIR}/runtime
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk
  FILES_MATCHING PATTERN "*.pb.h"
  PATTERN "CMakeFiles" EXCLUDE)
install(FILES collectives/c_api/silk.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk)

# Programs to bin/, finding libsilk in ../lib wherever the prefix is moved.
foreach(program allreduce_perf allreduce_loop silk-coordinator silk-train silk-demo silk-c-example silk-spec silk-wanem silk-netprobe)
  if(TARGET ${program})
    set_target_properties(${program} PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}"
                                                INSTALL_RPATH_USE_LINK_PATH TRUE)
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(EXPORT SilkTargets NAMESPACE Silk:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)
configure_package_config_file(cmake/SilkConfig.cmake.in ${PROJECT_BINARY_DIR}/SilkConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SilkConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SilkConfig.cmake ${PROJECT_BINARY_DIR}/SilkConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)

configure_file(cmake/silk.pc.in ${PROJECT_BINARY_DIR}/silk.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/silk.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
