# Protobuf sources of libsilk. Folders call silk_proto(file.proto ...); the
# top-level CMakeLists calls silk_generate_protos() once, because a custom
# command's outputs only reach targets defined in the same directory.
# The repository root is the proto path, so "runtime/x/y.proto" yields
# "${PROJECT_BINARY_DIR}/runtime/x/y.pb.h", included as "runtime/x/y.pb.h".
function(silk_proto)
  foreach(proto ${ARGN})
    get_filename_component(abs ${proto} ABSOLUTE)
    set_property(GLOBAL APPEND PROPERTY SILK_PROTOS ${abs})
  endforeach()
endfunction()

function(silk_generate_protos target)
  get_property(protos GLOBAL PROPERTY SILK_PROTOS)
  set(headers)
  foreach(abs ${protos})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${abs})
    string(REGEX REPLACE "\\.proto$" "" stem ${rel})
    add_custom_command(
      OUTPUT ${PROJECT_BINARY_DIR}/${stem}.pb.cc ${PROJECT_BINARY_DIR}/${stem}.pb.h
      COMMAND protobuf::protoc --proto_path=${PROJECT_SOURCE_DIR} --cpp_out=${PROJECT_BINARY_DIR} ${abs}
      DEPENDS ${abs} protobuf::protoc
      COMMENT "protoc ${rel}"
      VERBATIM)
    target_sources(${target} PRIVATE ${PROJECT_BINARY_DIR}/${stem}.pb.cc)
    list(APPEND headers ${PROJECT_BINARY_DIR}/${stem}.pb.h)
  endforeach()
  # The layers (SilkLayers.cmake) compile in other folders: they wait for this.
  add_custom_target(silk_protos DEPENDS ${headers})
endfunction()
