// libseccomp (Debian: libseccomp-dev), for compiling the jail's syscall filter.
#include <seccomp.h>
