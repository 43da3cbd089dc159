# Test helpers. Every test has a CTest TIMEOUT: nothing may hang CI.
include(GoogleTest)

set(SILK_TEST_TIMEOUT 300 CACHE STRING "Default CTest timeout per test, seconds")
set(SILK_MPI_ENV "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_rmaps_base_oversubscribe=1")
if(SILK_SANITIZE)
  # MPI_Init's own allocations are never freed: suppressed by OpenMPI's frames
  # (full stacks, so that the frames are there to match), Silk's still reported.
  list(APPEND SILK_MPI_ENV "ASAN_OPTIONS=fast_unwind_on_malloc=0"
       "LSAN_OPTIONS=suppressions=${PROJECT_SOURCE_DIR}/tests/support/lsan-mpi.supp")
endif()
# Tests on the virtual cluster: its tools come from this build, and OpenMPI
# never frees some of its own allocations, which LeakSanitizer would report in
# sanitizer builds (vcluster run hands ASAN_OPTIONS on to the ranks).
set(SILK_VCLUSTER_TEST_ENV "SILK_BUILD_DIR=${PROJECT_BINARY_DIR};ASAN_OPTIONS=detect_leaks=0")

# silk_gtest(NAME SOURCES a.cc b.cc [LIBS ...] [LABELS ...] [TIMEOUT s])
# One executable; each GoogleTest case becomes a CTest test.
function(silk_gtest name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${SILK_TEST_TIMEOUT})
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE silk silk_test_support GTest::gtest GTest::gtest_main ${ARG_LIBS})
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()

# silk_mpi_test(NAME NP n [TIMEOUT s] [LABELS ...] COMMAND exe args...)
# Runs a program under OpenMPI's mpirun as separate processes on loopback TCP.
function(silk_mpi_test name)
  cmake_parse_arguments(ARG "" "NP;TIMEOUT" "COMMAND;LABELS;ENV" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT ${SILK_TEST_TIMEOUT})
  endif()
  add_test(NAME ${name}
    COMMAND ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none -np ${ARG_NP}
            --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo
            ${ARG_COMMAND})
  set_tests_properties(${name} PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "mpi;${ARG_LABELS}"
    ENVIRONMENT "${SILK_MPI_ENV};${ARG_ENV}")
endfunction()
