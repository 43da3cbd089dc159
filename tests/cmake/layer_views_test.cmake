# Run by CTest (tests/cmake/CMakeLists.txt): for each (layer, header) pair,
# compiles a file that includes the header against the layer's view alone.
file(MAKE_DIRECTORY ${WORK})
set(failures "")

function(probe layer header expect)
  set(file ${WORK}/${layer}_probe.cc)
  file(WRITE ${file} "#include \"${header}\"\n")
  execute_process(
    COMMAND ${COMPILER} -std=c++20 -fsyntax-only -I${LAYERS}/${layer}/source -I${LAYERS}/${layer}/generated ${file}
    RESULT_VARIABLE result OUTPUT_QUIET ERROR_VARIABLE errors)
  if(expect STREQUAL "compiles" AND NOT result EQUAL 0)
    set(failures "${failures}  ${layer} should see ${header}:\n${errors}\n" PARENT_SCOPE)
  elseif(expect STREQUAL "fails" AND result EQUAL 0)
    set(failures "${failures}  ${layer} compiled an include of ${header}, a layer above it or beside it\n" PARENT_SCOPE)
  elseif(expect STREQUAL "fails" AND NOT errors MATCHES "No such file")
    set(failures "${failures}  ${layer} failed on ${header} for another reason than the view:\n${errors}\n" PARENT_SCOPE)
  endif()
endfunction()

# Headers the layer may see (each pulls in part of its own layer or below).
probe(core runtime/core/error.h compiles)
probe(transport runtime/transport/event_loop.h compiles)
probe(bootstrap runtime/bootstrap/store.h compiles)
probe(engine runtime/engine/engine.h compiles)
probe(communicator runtime/communicator.h compiles)
probe(collectives collectives/collectives.h compiles)
probe(training training/gradient_sync.h compiles)
# Headers above or beside it.
probe(core runtime/transport/frame.h fails)
probe(transport runtime/bootstrap/store.h fails)
probe(bootstrap runtime/transport/socket.h fails)
probe(engine runtime/communicator.h fails)
probe(communicator collectives/collectives.h fails)
probe(collectives training/trace.h fails)

if(failures)
  message(FATAL_ERROR "layer views:\n${failures}")
endif()
message(STATUS "every layer sees the layers below it and nothing above")
