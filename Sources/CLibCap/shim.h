// libcap (Debian: libcap-dev), for reading and naming capabilities.
#include <sys/capability.h>
