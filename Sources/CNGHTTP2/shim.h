// System-library shim: the one place Swift sees libnghttp2's C API.
#pragma once
#include <nghttp2/nghttp2.h>
