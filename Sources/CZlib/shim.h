// zlib (Debian's zlib1g-dev), for /proc/config.gz: gzdopen/gzread on a descriptor the
// reader has already checked is a regular file.
#include <zlib.h>
