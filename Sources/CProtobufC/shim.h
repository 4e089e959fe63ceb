// System-library shim: the one place Swift sees libprotobuf-c's C API.
#pragma once
#include <protobuf-c/protobuf-c.h>
