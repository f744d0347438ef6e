# Install rules: the CLI, the library and its public headers, a pkg-config file
# (taskrel.pc), a CMake package (find_package(taskrel) -> taskrel::taskrel), and
# the launch scripts and example configs under share/taskrel/.
include(CMakePackageConfigHelpers)

set(TASKREL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/taskrel)

install(TARGETS taskrel_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS taskrel EXPORT taskrelTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/taskrel ${PROJECT_BINARY_DIR}/include/taskrel
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")

install(EXPORT taskrelTargets NAMESPACE taskrel:: DESTINATION ${TASKREL_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/taskrelConfig.cmake.in
  ${PROJECT_BINARY_DIR}/taskrelConfig.cmake INSTALL_DESTINATION ${TASKREL_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/taskrelConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/taskrelConfig.cmake ${PROJECT_BINARY_DIR}/taskrelConfigVersion.cmake
  DESTINATION ${TASKREL_CMAKE_DIR})

# pkg-config: the dependencies as a plain link line (absolute paths and -l flags,
# as CMake found them). MPI and HDF5 are part of the public API (the headers
# include mpi.h and hdf5.h): always in Libs. The rest are in Libs for the
# static library and in Libs.private for the shared one.
function(taskrel_pc_items out)
  set(items "")
  foreach(item ${ARGN})
    if(item STREQUAL "MPI::MPI_C")
      list(APPEND items ${MPI_C_LINK_FLAGS} ${MPI_C_LIBRARIES})
    elseif(item STREQUAL "ZLIB::ZLIB")
      list(APPEND items ${ZLIB_LIBRARIES})
    elseif(IS_ABSOLUTE "${item}" OR item MATCHES "^-")
      list(APPEND items "${item}")
    elseif(NOT item MATCHES "^(optimized|debug|general)$") # keywords of HDF5's list
      list(APPEND items "-l${item}")
    endif()
  endforeach()
  set(${out} ${items} PARENT_SCOPE)
endfunction()
taskrel_pc_items(_pc_public MPI::MPI_C ${HDF5_C_LIBRARIES})
set(_pc_rest ${TASKREL_DEP_LIBS})
list(REMOVE_ITEM _pc_rest MPI::MPI_C ${HDF5_C_LIBRARIES})
taskrel_pc_items(_pc_private ${_pc_rest})
list(REMOVE_DUPLICATES _pc_public)
list(REMOVE_DUPLICATES _pc_private)
list(REMOVE_ITEM _pc_private ${_pc_public})
set(_pc_cflags "")
foreach(d ${MPI_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  list(APPEND _pc_cflags "-I${d}")
endforeach()
list(APPEND _pc_cflags ${MPI_C_COMPILE_OPTIONS})
foreach(d ${MPI_C_COMPILE_DEFINITIONS})
  list(APPEND _pc_cflags "-D${d}")
endforeach()
list(REMOVE_DUPLICATES _pc_cflags)
list(JOIN _pc_cflags " " TASKREL_PC_DEP_CFLAGS)
if(BUILD_SHARED_LIBS)
  list(JOIN _pc_public " " TASKREL_PC_LIBS)
  list(JOIN _pc_private " " TASKREL_PC_LIBS_PRIVATE)
else()
  list(JOIN _pc_public " " _pub)
  list(JOIN _pc_private " " _priv)
  set(TASKREL_PC_LIBS "${_pub} ${_priv}")
  set(TASKREL_PC_LIBS_PRIVATE "")
endif()
# Relocatable: the prefix is found from the .pc file's own place, so an install
# with `cmake --install build --prefix DIR` is right wherever DIR is.
file(RELATIVE_PATH TASKREL_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/taskrel.pc.in ${PROJECT_BINARY_DIR}/taskrel.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/taskrel.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# share/taskrel: what a user runs next to the CLI. scaling.sh needs the source
# tree (it builds and benchmarks) and is not installed.
set(TASKREL_SHARE_DIR ${CMAKE_INSTALL_DATADIR}/taskrel)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/launch/local.sh DESTINATION ${TASKREL_SHARE_DIR}/launch)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/launch/slurm/train.sbatch DESTINATION ${TASKREL_SHARE_DIR}/launch/slurm)
install(FILES ${PROJECT_SOURCE_DIR}/launch/slurm/README.md DESTINATION ${TASKREL_SHARE_DIR}/launch/slurm)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/launch/configs/ DESTINATION ${TASKREL_SHARE_DIR}/configs
  FILES_MATCHING PATTERN "*.ini")
install(FILES ${PROJECT_SOURCE_DIR}/datasets/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} RENAME datasets.md)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
