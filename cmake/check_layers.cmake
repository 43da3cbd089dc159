# Fails the build when a file includes a header of a higher layer: the tree is
# the architecture, and this keeps it so. Run as `cmake -DSOURCE_DIR=... -P`.
#
#   core < bootstrap, transport < engine < communicator < collectives < training < frameworks
#
# runtime/bootstrap and runtime/transport are siblings: neither includes the
# other. cluster/ (tooling: the WAN emulator, the virtual cluster) may use
# runtime/core only. Tests, examples and benchmarks may include anything.

set(_layers core bootstrap transport engine communicator collectives training frameworks cluster)
set(_allowed_core core)
set(_allowed_bootstrap core bootstrap)
set(_allowed_transport core transport)
set(_allowed_engine core transport engine)
set(_allowed_communicator core bootstrap transport engine communicator)
set(_allowed_collectives ${_allowed_communicator} collectives)
set(_allowed_training ${_allowed_collectives} training)
set(_allowed_frameworks ${_allowed_training} frameworks)
set(_allowed_cluster core cluster)

# The layer of a path relative to the source tree ("" for none).
function(_layer_of path out)
  if(path MATCHES "^runtime/core/")
    set(layer core)
  elseif(path MATCHES "^runtime/bootstrap/")
    set(layer bootstrap)
  elseif(path MATCHES "^runtime/transport/")
    set(layer transport)
  elseif(path MATCHES "^runtime/engine/")
    set(layer engine)
  elseif(path MATCHES "^runtime/[^/]+$")
    set(layer communicator)
  elseif(path MATCHES "^(collectives|training|frameworks|cluster)/")
    set(layer ${CMAKE_MATCH_1})
  else()
    set(layer "")
  endif()
  set(${out} "${layer}" PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE _sources RELATIVE "${SOURCE_DIR}"
  "${SOURCE_DIR}/runtime/*.h" "${SOURCE_DIR}/runtime/*.cc"
  "${SOURCE_DIR}/collectives/*.h" "${SOURCE_DIR}/collectives/*.cc" "${SOURCE_DIR}/collectives/*.c"
  "${SOURCE_DIR}/training/*.h" "${SOURCE_DIR}/training/*.cc"
  "${SOURCE_DIR}/frameworks/*.h" "${SOURCE_DIR}/frameworks/*.cc"
  "${SOURCE_DIR}/cluster/*.h" "${SOURCE_DIR}/cluster/*.cc")
set(_violations "")
foreach(file ${_sources})
  _layer_of("${file}" from)
  file(STRINGS "${SOURCE_DIR}/${file}" includes REGEX "^#include \"[^\"]+\"")
  foreach(line ${includes})
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" header "${line}")
    _layer_of("${header}" to)
    if(to STREQUAL "" OR from STREQUAL "")
      continue()
    endif()
    list(FIND _allowed_${from} "${to}" ok)
    if(ok EQUAL -1)
      string(APPEND _violations "  ${file} (${from}) includes ${header} (${to})\n")
    endif()
  endforeach()
endforeach()
if(_violations)
  message(FATAL_ERROR "A lower layer includes a higher one (see cmake/check_layers.cmake):\n${_violations}")
endif()
