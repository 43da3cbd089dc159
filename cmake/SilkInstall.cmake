# Install rules: libsilk, its headers (under include/silk/, keeping the source
# layout, plus <silk/silk.h> for C), the CMake package (find_package(Silk),
# target Silk::silk) and a pkg-config file (silk.pc).
include(CMakePackageConfigHelpers)

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

install(DIRECTORY runtime collectives
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk
  FILES_MATCHING PATTERN "*.h")
install(DIRECTORY ${PROJECT_BINARY_DIR}/runtime
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk
  FILES_MATCHING PATTERN "*.pb.h"
  PATTERN "CMakeFiles" EXCLUDE)
install(FILES collectives/c_api/silk.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/silk)

install(EXPORT SilkTargets NAMESPACE Silk:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)
configure_package_config_file(cmake/SilkConfig.cmake.in ${PROJECT_BINARY_DIR}/SilkConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/SilkConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/SilkConfig.cmake ${PROJECT_BINARY_DIR}/SilkConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/Silk)

configure_file(cmake/silk.pc.in ${PROJECT_BINARY_DIR}/silk.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/silk.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
