# Install rules, the CMake package (find_package(Silk)) and pkg-config file: filled in with the C API.
