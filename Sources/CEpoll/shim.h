// System-library shim: Linux's epoll, which Glibc's Swift module leaves out (used by Postgres's
// SocketPoller to wait on libpq sockets).
#pragma once
#include <sys/epoll.h>
