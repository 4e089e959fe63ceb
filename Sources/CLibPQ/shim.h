// System-library shim: the one place Swift sees libpq's C API.
#pragma once
#include <libpq-fe.h>
