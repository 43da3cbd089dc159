# One CMake target per layer of libsilk: an OBJECT library compiled against a
# view of the tree that holds only its own layer and the layers below it, so
# an upward include does not compile. libsilk is the union of the layers.
#
#   core < bootstrap, transport < engine < communicator < collectives < training
#
# (bootstrap and transport are siblings: neither sees the other.)
# cmake/check_layers.cmake states the same rule for every file, cluster/ and
# frameworks/ included, and names each offending include before compiling.

set(_silk_paths_core runtime/core)
set(_silk_paths_bootstrap runtime/bootstrap)
set(_silk_paths_transport runtime/transport)
set(_silk_paths_engine runtime/engine)
# The communicator is the files directly in runtime/ (its subfolders are the
# layers below); a header added there joins the view at the next build.
file(GLOB _silk_communicator_headers CONFIGURE_DEPENDS RELATIVE ${PROJECT_SOURCE_DIR}
  ${PROJECT_SOURCE_DIR}/runtime/*.h ${PROJECT_SOURCE_DIR}/runtime/*.proto)
string(REGEX REPLACE "\\.proto(;|$)" ".pb.h\\1" _silk_paths_communicator "${_silk_communicator_headers}")
set(_silk_paths_collectives collectives)
set(_silk_paths_training training)

set(_silk_below_core "")
set(_silk_below_bootstrap core)
set(_silk_below_transport core)
set(_silk_below_engine core transport)
set(_silk_below_communicator core bootstrap transport engine)
set(_silk_below_collectives ${_silk_below_communicator} communicator)
set(_silk_below_training ${_silk_below_collectives} collectives)

# What every layer compiles against outside the tree.
set(_silk_layer_libs
  absl::status absl::statusor absl::strings absl::str_format absl::time absl::synchronization absl::span
  absl::flat_hash_map absl::hash protobuf::libprotobuf OpenSSL::Crypto MPI::MPI_C Threads::Threads)

# silk_layer(<name> SOURCES <files relative to the calling folder>...)
function(silk_layer name)
  cmake_parse_arguments(L "" "" "SOURCES" ${ARGN})
  if(NOT DEFINED _silk_paths_${name})
    message(FATAL_ERROR "silk_layer: no layer named ${name}")
  endif()
  set(view ${PROJECT_BINARY_DIR}/layers/${name})
  foreach(layer ${name} ${_silk_below_${name}})
    foreach(path ${_silk_paths_${layer}})
      # The sources, and the headers protoc writes into the build tree.
      foreach(root_and_side "${PROJECT_SOURCE_DIR};source" "${PROJECT_BINARY_DIR};generated")
        list(GET root_and_side 0 root)
        list(GET root_and_side 1 side)
        get_filename_component(parent ${view}/${side}/${path} DIRECTORY)
        file(MAKE_DIRECTORY ${parent})
        if(NOT IS_SYMLINK ${view}/${side}/${path})
          file(CREATE_LINK ${root}/${path} ${view}/${side}/${path} SYMBOLIC)
        endif()
      endforeach()
    endforeach()
  endforeach()
  add_library(silk_${name} OBJECT ${L_SOURCES})
  target_include_directories(silk_${name} PRIVATE ${view}/source ${view}/generated)
  target_link_libraries(silk_${name} PRIVATE ${_silk_layer_libs})
  add_dependencies(silk_${name} silk_layers silk_protos)
  target_sources(silk PRIVATE $<TARGET_OBJECTS:silk_${name}>)
endfunction()
