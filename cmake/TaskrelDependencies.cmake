# Finds taskrel's dependencies the standard way and defines
#   TASKREL_DEP_LIBS          what the library links (imported targets MPI::MPI_C and
#                             ZLIB::ZLIB, otherwise absolute paths and -l flags)
#   TASKREL_DEP_INCLUDE_DIRS  include directories of the dependencies' headers
#   TASKREL_COMPAT_INCLUDE_DIR  generated <cblas.h>/<lapacke.h> shims for vendors that
#                             name them differently (MKL), or empty
# Every search can be steered from the command line: see docs/install.md.

# ---- MPI, parallel HDF5, zlib ------------------------------------------------------
find_package(MPI REQUIRED COMPONENTS C)
set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "taskrel needs parallel HDF5 (Debian: libhdf5-openmpi-dev; "
    "a cluster: an HDF5 module built with MPI, e.g. Spack's hdf5+mpi)")
endif()
find_package(ZLIB REQUIRED)
find_package(PkgConfig QUIET)

# ---- BLAS and LAPACK ---------------------------------------------------------------
set(TASKREL_BLAS_VENDOR "OpenBLAS" CACHE STRING
  "BLAS vendor: OpenBLAS, MKL, BLIS, Generic, or any BLA_VENDOR value of CMake's FindBLAS")
set_property(CACHE TASKREL_BLAS_VENDOR PROPERTY STRINGS OpenBLAS MKL BLIS Generic All)
set(TASKREL_LAPACK_VENDOR "" CACHE STRING
  "LAPACK vendor when it differs from TASKREL_BLAS_VENDOR (BLIS has no LAPACK: Generic by default)")

# Friendly names to FindBLAS's vendor names.
function(taskrel_bla_vendor out name)
  if(name STREQUAL "MKL")
    set(v Intel10_64lp_seq) # one thread per rank, like OPENBLAS_NUM_THREADS=1
  elseif(name STREQUAL "BLIS")
    set(v FLAME)
  else()
    set(v ${name})
  endif()
  set(${out} ${v} PARENT_SCOPE)
endfunction()

taskrel_bla_vendor(_blas_vendor "${TASKREL_BLAS_VENDOR}")
set(_lapack_vendor_name "${TASKREL_LAPACK_VENDOR}")
if(NOT _lapack_vendor_name)
  if(TASKREL_BLAS_VENDOR STREQUAL "BLIS")
    set(_lapack_vendor_name Generic)
  else()
    set(_lapack_vendor_name "${TASKREL_BLAS_VENDOR}")
  endif()
endif()
taskrel_bla_vendor(_lapack_vendor "${_lapack_vendor_name}")

set(BLA_VENDOR ${_blas_vendor})
find_package(BLAS REQUIRED)
set(TASKREL_BLAS_LIBRARIES ${BLAS_LIBRARIES})
set(BLA_VENDOR ${_lapack_vendor})
find_package(LAPACK REQUIRED)
unset(BLA_VENDOR)
message(STATUS "taskrel: BLAS (${_blas_vendor}): ${TASKREL_BLAS_LIBRARIES}")
message(STATUS "taskrel: LAPACK (${_lapack_vendor}): ${LAPACK_LIBRARIES}")

# LAPACKE: part of the LAPACK library for OpenBLAS built from source and MKL,
# a separate liblapacke on Debian and for reference LAPACK.
include(CheckFunctionExists)
set(CMAKE_REQUIRED_LIBRARIES ${LAPACK_LIBRARIES} ${TASKREL_BLAS_LIBRARIES} m)
set(CMAKE_REQUIRED_QUIET ON)
check_function_exists(LAPACKE_dsyevd TASKREL_LAPACK_HAS_LAPACKE)
unset(CMAKE_REQUIRED_LIBRARIES)
unset(CMAKE_REQUIRED_QUIET)
set(TASKREL_LAPACKE_LIBRARIES "")
if(NOT TASKREL_LAPACK_HAS_LAPACKE)
  find_library(TASKREL_LAPACKE_LIBRARY NAMES lapacke)
  if(NOT TASKREL_LAPACKE_LIBRARY)
    message(FATAL_ERROR "taskrel: LAPACKE not found: the LAPACK library has no LAPACKE_dsyevd "
      "and there is no liblapacke (Debian: liblapacke-dev; or set TASKREL_LAPACKE_LIBRARY)")
  endif()
  set(TASKREL_LAPACKE_LIBRARIES ${TASKREL_LAPACKE_LIBRARY})
endif()

# Headers: next to the libraries (module installs), under the vendor's own
# subdirectory (Debian's openblas-pthread, openblas, blis, mkl) or in the
# system directories. MKL names them mkl_cblas.h and mkl_lapacke.h.
set(_hdr_hints "")
foreach(lib ${TASKREL_BLAS_LIBRARIES} ${LAPACK_LIBRARIES} ${TASKREL_LAPACKE_LIBRARIES})
  if(IS_ABSOLUTE "${lib}")
    get_filename_component(_d "${lib}" DIRECTORY)
    list(APPEND _hdr_hints "${_d}/../include")
  endif()
endforeach()
if(DEFINED ENV{MKLROOT})
  list(APPEND _hdr_hints "$ENV{MKLROOT}/include")
endif()
# The chosen vendor's own directories first (a system may have several cblas.h).
if(_blas_vendor STREQUAL "FLAME")
  set(_hdr_suffixes blis blis-openmp blis-pthread blis-serial openblas openblas-pthread openblas-openmp openblas64 mkl)
elseif(_blas_vendor MATCHES "^Intel")
  set(_hdr_suffixes mkl openblas openblas-pthread openblas-openmp openblas64 blis)
else()
  set(_hdr_suffixes openblas openblas-pthread openblas-openmp openblas64 blis mkl)
endif()
if(_blas_vendor MATCHES "^Intel")
  set(_cblas_names mkl_cblas.h cblas.h)
  set(_lapacke_names mkl_lapacke.h lapacke.h)
else()
  set(_cblas_names cblas.h mkl_cblas.h)
  set(_lapacke_names lapacke.h mkl_lapacke.h)
endif()
find_path(TASKREL_CBLAS_INCLUDE_DIR NAMES ${_cblas_names} HINTS ${_hdr_hints}
  PATH_SUFFIXES ${_hdr_suffixes}
  DOC "directory of cblas.h (or MKL's mkl_cblas.h)")
find_path(TASKREL_LAPACKE_INCLUDE_DIR NAMES ${_lapacke_names} HINTS ${_hdr_hints}
  PATH_SUFFIXES ${_hdr_suffixes}
  DOC "directory of lapacke.h (or MKL's mkl_lapacke.h)")
foreach(v CBLAS LAPACKE)
  if(NOT TASKREL_${v}_INCLUDE_DIR)
    string(TOLOWER ${v} _h)
    message(FATAL_ERROR "taskrel: ${_h}.h not found (set TASKREL_${v}_INCLUDE_DIR to its directory)")
  endif()
endforeach()
set(TASKREL_COMPAT_INCLUDE_DIR "")
foreach(h cblas lapacke)
  string(TOUPPER ${h} _H)
  if(NOT EXISTS "${TASKREL_${_H}_INCLUDE_DIR}/${h}.h")
    set(TASKREL_COMPAT_INCLUDE_DIR "${PROJECT_BINARY_DIR}/compat")
    file(WRITE "${TASKREL_COMPAT_INCLUDE_DIR}/${h}.h"
      "/* generated by CMake: the vendor names this header mkl_${h}.h */\n#include <mkl_${h}.h>\n")
  endif()
endforeach()
message(STATUS "taskrel: cblas.h in ${TASKREL_CBLAS_INCLUDE_DIR}, lapacke.h in ${TASKREL_LAPACKE_INCLUDE_DIR}")

# ---- ScaLAPACK ---------------------------------------------------------------------
# TASKREL_SCALAPACK_LIBRARIES (a list) bypasses the search, e.g. for MKL:
#   -DTASKREL_SCALAPACK_LIBRARIES="mkl_scalapack_lp64;mkl_blacs_openmpi_lp64"
# TASKREL_SCALAPACK_ROOT (or the environment's SCALAPACK_ROOT) is searched first.
set(TASKREL_SCALAPACK_LIBRARIES "" CACHE STRING "ScaLAPACK (and BLACS) libraries; empty: search")
set(TASKREL_SCALAPACK_ROOT "$ENV{SCALAPACK_ROOT}" CACHE PATH "ScaLAPACK installation prefix to search first")
set(_scalapack_names scalapack-openmpi scalapack scalapack-mpich scalapack-mpich2 scalapack-mpi)
if(TASKREL_SCALAPACK_LIBRARIES)
  set(_scalapack ${TASKREL_SCALAPACK_LIBRARIES})
  set(_scalapack_from "TASKREL_SCALAPACK_LIBRARIES")
else()
  if(TASKREL_SCALAPACK_ROOT)
    find_library(TASKREL_SCALAPACK_LIBRARY NAMES ${_scalapack_names}
      PATHS ${TASKREL_SCALAPACK_ROOT} PATH_SUFFIXES lib lib64 NO_DEFAULT_PATH)
  endif()
  if(NOT TASKREL_SCALAPACK_LIBRARY AND PKG_CONFIG_FOUND)
    pkg_search_module(TASKREL_SCALAPACK_PC QUIET ${_scalapack_names})
  endif()
  if(TASKREL_SCALAPACK_LIBRARY)
    set(_scalapack ${TASKREL_SCALAPACK_LIBRARY})
    set(_scalapack_from "${TASKREL_SCALAPACK_ROOT}")
  elseif(TASKREL_SCALAPACK_PC_FOUND)
    set(_scalapack ${TASKREL_SCALAPACK_PC_LINK_LIBRARIES})
    set(_scalapack_from "pkg-config ${TASKREL_SCALAPACK_PC_MODULE_NAME}")
  else()
    find_library(TASKREL_SCALAPACK_LIBRARY NAMES ${_scalapack_names})
    if(NOT TASKREL_SCALAPACK_LIBRARY)
      message(FATAL_ERROR "taskrel: ScaLAPACK not found under the names ${_scalapack_names} "
        "(Debian: libscalapack-openmpi-dev; else set TASKREL_SCALAPACK_ROOT or "
        "TASKREL_SCALAPACK_LIBRARIES)")
    endif()
    set(_scalapack ${TASKREL_SCALAPACK_LIBRARY})
    set(_scalapack_from "library search")
  endif()
endif()
message(STATUS "taskrel: ScaLAPACK (${_scalapack_from}): ${_scalapack}")

# ---- inih --------------------------------------------------------------------------
set(_inih "")
if(PKG_CONFIG_FOUND)
  pkg_check_modules(TASKREL_INIH_PC QUIET inih)
  if(TASKREL_INIH_PC_FOUND)
    set(_inih ${TASKREL_INIH_PC_LINK_LIBRARIES})
    set(TASKREL_INIH_INCLUDE_DIR ${TASKREL_INIH_PC_INCLUDE_DIRS})
  endif()
endif()
if(NOT _inih)
  find_path(TASKREL_INIH_INCLUDE_DIR ini.h REQUIRED)
  find_library(TASKREL_INIH_LIBRARY NAMES inih REQUIRED)
  set(_inih ${TASKREL_INIH_LIBRARY})
endif()

# The chosen BLAS comes first so that its symbols win over a generic libblas that
# ScaLAPACK's or LAPACK's own dependencies may bring in (shared libraries), and
# again last for static archives.
set(TASKREL_DEP_LIBS
  MPI::MPI_C ${HDF5_C_LIBRARIES} ${TASKREL_BLAS_LIBRARIES} ${_scalapack}
  ${TASKREL_LAPACKE_LIBRARIES} ${LAPACK_LIBRARIES} ${TASKREL_BLAS_LIBRARIES}
  ZLIB::ZLIB ${_inih} m)
set(TASKREL_DEP_INCLUDE_DIRS ${HDF5_INCLUDE_DIRS} ${TASKREL_CBLAS_INCLUDE_DIR}
  ${TASKREL_LAPACKE_INCLUDE_DIR} ${TASKREL_INIH_INCLUDE_DIR})
list(REMOVE_DUPLICATES TASKREL_DEP_INCLUDE_DIRS)
