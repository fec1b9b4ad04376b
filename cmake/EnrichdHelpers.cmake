# Shared build settings for every enrichd target.

add_library(enrichd_build_flags INTERFACE)
target_compile_options(enrichd_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wnull-dereference -Wimplicit-fallthrough)
if(ENRICHD_WARNINGS_AS_ERRORS)
  target_compile_options(enrichd_build_flags INTERFACE -Werror)
endif()
if(ENRICHD_SANITIZE)
  target_compile_options(enrichd_build_flags INTERFACE
    -fsanitize=${ENRICHD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(enrichd_build_flags INTERFACE -fsanitize=${ENRICHD_SANITIZE})
endif()

# enrichd_library(NAME SOURCES ... DEPS ...): one static library of a layer.
function(enrichd_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC enrichd_build_flags ${ARG_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  # Every layer library becomes part of libenrichd (the `enrichd_all` target).
  set_property(GLOBAL APPEND PROPERTY ENRICHD_LAYER_LIBRARIES ${name})
endfunction()

# enrichd_test(NAME SOURCES ... DEPS ... LABELS ...): one gtest executable, registered
# with ctest under the given labels (unit, integration, postgres, e2e, ...).
function(enrichd_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE enrichd_build_flags ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(${name} PRIVATE
    ENRICHD_TESTDATA_DIR="${ENRICHD_TESTDATA_DIR}"
    ENRICHD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    ENRICHD_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT})
  if("postgres" IN_LIST ARG_LABELS)
    # Without a server every postgres test calls GTEST_SKIP(): report it as skipped,
    # never as passed.
    set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  endif()
endfunction()

# enrichd_benchmark(NAME SOURCES ... DEPS ...): one Google Benchmark executable.
function(enrichd_benchmark name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE enrichd_build_flags ${ARG_DEPS} benchmark::benchmark)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
endfunction()
